<?php

declare(strict_types=1);

// What every request needs before routing: the class autoloader (PSR-4 style, LampApp\ -> src/),
// UTC dates, and an error page instead of a blank one for an uncaught exception.

spl_autoload_register(static function (string $class): void {
    $prefix = 'LampApp\\';
    if (str_starts_with($class, $prefix)) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

date_default_timezone_set('UTC');

set_exception_handler(static function (Throwable $e): void {
    // The details go to the error log (stderr under php -S, the function's log on Lambda).
    error_log(sprintf('%s: %s in %s:%d', $e::class, $e->getMessage(), $e->getFile(), $e->getLine()));
    if (!headers_sent()) {
        http_response_code(500);
        header('Content-Type: text/html; charset=utf-8');
    }
    echo LampApp\View::page('Server error', '<h1>Something went wrong</h1><p>The error was logged.</p>');
});
