<?php

declare(strict_types=1);

namespace LampApp;

/** A per-session token that a form posts back, so another site cannot post in the user's name. */
final class Csrf
{
    private const KEY = 'csrf_token';

    /** The session's token, created on first use; needs an active session. */
    public static function token(): string
    {
        if (!isset($_SESSION[self::KEY]) || !is_string($_SESSION[self::KEY])) {
            $_SESSION[self::KEY] = bin2hex(random_bytes(32));
        }
        return $_SESSION[self::KEY];
    }

    public static function valid(mixed $posted): bool
    {
        $expected = $_SESSION[self::KEY] ?? null;
        return is_string($expected) && is_string($posted) && hash_equals($expected, $posted);
    }
}
