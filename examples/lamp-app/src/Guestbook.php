<?php

declare(strict_types=1);

namespace LampApp;

use PDO;

/**
 * Guestbook entries in a database table (see Database: MySQL through RDS Proxy on Lambda,
 * SQLite in the temp dir when none is configured), created on first use.
 */
final class Guestbook
{
    private const SHOWN = 100;

    public function __construct(private readonly PDO $db)
    {
        $this->db->exec(match ($db->getAttribute(PDO::ATTR_DRIVER_NAME)) {
            'mysql' => 'CREATE TABLE IF NOT EXISTS guestbook (
                id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                name VARCHAR(160) NOT NULL, message TEXT NOT NULL, created_at BIGINT NOT NULL
            ) DEFAULT CHARSET=utf8mb4',
            default => 'CREATE TABLE IF NOT EXISTS guestbook (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL, message TEXT NOT NULL, created_at INTEGER NOT NULL
            )',
        });
    }

    public static function open(): self
    {
        return new self(Database::connect());
    }

    /** The database's kind, as PDO names its driver (`sqlite`, `mysql`). */
    public function driver(): string
    {
        return (string) $this->db->getAttribute(PDO::ATTR_DRIVER_NAME);
    }

    /** @return list<array{name: string, message: string, time: int}> newest first */
    public function entries(): array
    {
        $rows = $this->db->query(
            'SELECT name, message, created_at FROM guestbook ORDER BY id DESC LIMIT ' . self::SHOWN
        )->fetchAll();
        return array_map(static fn (array $row): array => [
            'name' => (string) $row['name'],
            'message' => (string) $row['message'],
            'time' => (int) $row['created_at'],
        ], $rows);
    }

    public function count(): int
    {
        return (int) $this->db->query('SELECT COUNT(*) FROM guestbook')->fetchColumn();
    }

    public function add(string $name, string $message): void
    {
        $insert = $this->db->prepare('INSERT INTO guestbook (name, message, created_at) VALUES (?, ?, ?)');
        $insert->execute([$name, $message, time()]);
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
