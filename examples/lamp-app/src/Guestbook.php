<?php

declare(strict_types=1);

namespace LampApp;

/**
 * Guestbook entries in one JSON file in the temp dir: the app's folder is read-only on Lambda,
 * /tmp is writable (and per execution environment, so entries live as long as it does).
 */
final class Guestbook
{
    private const MAX_ENTRIES = 100;

    public function __construct(private readonly string $file)
    {
    }

    public static function inTempDir(): self
    {
        return new self(sys_get_temp_dir() . '/lamp-app-guestbook.json');
    }

    /** @return list<array{name: string, message: string, time: int}> newest first */
    public function entries(): array
    {
        $json = @file_get_contents($this->file);
        if ($json === false || $json === '') {
            return [];
        }
        $entries = json_decode($json, true);
        return is_array($entries) ? $entries : [];
    }

    public function add(string $name, string $message): void
    {
        // Read, prepend and rewrite under an exclusive lock, so concurrent posts do not lose
        // each other's entries.
        $handle = fopen($this->file, 'c+');
        if ($handle === false) {
            throw new \RuntimeException("cannot open {$this->file}");
        }
        try {
            flock($handle, LOCK_EX);
            $entries = json_decode(stream_get_contents($handle) ?: '[]', true);
            if (!is_array($entries)) {
                $entries = [];
            }
            array_unshift($entries, ['name' => $name, 'message' => $message, 'time' => time()]);
            $entries = array_slice($entries, 0, self::MAX_ENTRIES);
            ftruncate($handle, 0);
            rewind($handle);
            fwrite($handle, json_encode($entries, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR));
            fflush($handle);
            flock($handle, LOCK_UN);
        } finally {
            fclose($handle);
        }
    }

    /**
     * The problems with a submitted entry, by field; empty when it is fine.
     *
     * @return array<string, string>
     */
    public static function validate(string $name, string $message): array
    {
        $errors = [];
        // `u`: lengths in characters, and invalid UTF-8 does not match.
        if (!preg_match('/^\S.{0,39}\z/us', $name)) {
            $errors['name'] = 'Your name: 1 to 40 characters.';
        }
        if (!preg_match('/^\S.{0,499}\z/us', $message)) {
            $errors['message'] = 'The message: 1 to 500 characters.';
        }
        return $errors;
    }
}
