<?php

declare(strict_types=1);

// Compiles every template into var/cache/twig, as a deploy's build step does (run by the
// benchmark with native php8.2 before any server starts; the servers only read the cache).

require dirname(__DIR__) . '/src/bootstrap.php';

$twig = twig();
$templates = dirname(__DIR__) . '/templates';
foreach (glob($templates . '/*.twig') as $file) {
    $twig->load(basename($file));
    echo 'compiled ', basename($file), "\n";
}
