<?php

declare(strict_types=1);

// The front controller: every URL that is not a file in public/ comes here (nginx:
// `try_files $uri $uri/ /index.php?$args`; on Lambda: API Gateway's `/{proxy+}` route).

use LampApp\Pages;
use LampApp\Router;

// `php -S` runs this script for every URL: hand existing files back to it, as nginx would.
if (PHP_SAPI === 'cli-server') {
    $file = __DIR__ . rawurldecode((string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH));
    if ($file !== __FILE__ && is_file($file)) {
        return false;
    }
}

// The code outside the document root: the task root's src/ (public/ is the document root).
require __DIR__ . '/../src/bootstrap.php';

(new Router())
    ->get('/', Pages::home(...))
    ->get('/guestbook', Pages::guestbookForm(...))
    ->post('/guestbook', Pages::guestbookPost(...))
    ->get('/upload', Pages::uploadForm(...))
    ->post('/upload', Pages::uploadPost(...))
    ->get('/hello', Pages::hello(...))
    ->get('/api/info', Pages::info(...))
    ->dispatch(
        $_SERVER['REQUEST_METHOD'] ?? 'GET',
        rawurldecode((string) parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH)) ?: '/',
        Pages::notFound(...),
    );
