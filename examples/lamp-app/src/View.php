<?php

declare(strict_types=1);

namespace LampApp;

/** HTML output: escaping and the page layout shared by every HTML route. */
final class View
{
    public static function e(string $text): string
    {
        return htmlspecialchars($text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
    }

    /** A whole page around $body (HTML, already escaped by the caller). */
    public static function page(string $title, string $body): string
    {
        $title = self::e($title);
        return <<<HTML
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{$title} · lamp-app</title>
            <link rel="stylesheet" href="/assets/site.css">
            <link rel="icon" href="/assets/logo.png">
            </head>
            <body>
            <header><a href="/"><img src="/assets/logo.png" alt="" width="16" height="16"> lamp-app</a>
            <nav><a href="/guestbook">Guestbook</a> <a href="/upload">Upload</a> <a href="/hello">Hello</a> <a href="/api/info">API</a></nav></header>
            <main>
            {$body}
            </main>
            <script src="/assets/app.js" defer></script>
            </body>
            </html>

            HTML;
    }
}
