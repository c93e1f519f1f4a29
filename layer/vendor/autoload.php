<?php

// The vendor layer's one autoloader: `require '/opt/vendor/autoload.php';` in a handler.
//
// The libraries are Debian 12's packages (debian-packages.txt), laid out as Debian installs
// them in /usr/share/php: one folder per namespace. Debian's own autoload.php files find each
// other through include_path (`require_once 'Psr/Http/Message/autoload.php'`), which has no
// /usr/share/php here, so the layer leaves them out and loads what the packages' composer.json
// declare, as Composer would: classes by PSR-4 prefix, and the "files" that define functions.
// Every class file of the layer autoloading from its own file is a test (tests/it/vendor.rs).

spl_autoload_register(static function (string $class): void {
    // Namespace prefix => its folder. GuzzleHttp\ holds php-guzzlehttp-guzzle and, below it,
    // -promises (GuzzleHttp\Promise\) and -psr7 (GuzzleHttp\Psr7\); Psr\Http\Message\ holds
    // php-psr-http-message and php-psr-http-factory.
    static $prefixes = [
        'GuzzleHttp\\' => __DIR__ . '/GuzzleHttp/',
        'Psr\\Http\\Client\\' => __DIR__ . '/Psr/Http/Client/',
        'Psr\\Http\\Message\\' => __DIR__ . '/Psr/Http/Message/',
    ];
    foreach ($prefixes as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
            continue;
        }
        $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
        return;
    }
});

// Composer's "files": functions, defined up front (each guards against a second definition).
require_once __DIR__ . '/GuzzleHttp/functions_include.php';           // guzzlehttp/guzzle
require_once __DIR__ . '/GuzzleHttp/Promise/functions_include.php';   // guzzlehttp/promises
require_once __DIR__ . '/getallheaders/getallheaders.php';            // ralouphie/getallheaders
require_once __DIR__ . '/Symfony/Contracts/Deprecation/function.php'; // symfony/deprecation-contracts
