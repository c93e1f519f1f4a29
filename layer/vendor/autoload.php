<?php

// The vendor layer's autoloader: PSR-4 prefixes mapped by hand (the layer is built without
// Composer). A handler loads it with `require '/opt/vendor/autoload.php';`.
spl_autoload_register(static function (string $class): void {
    $prefixes = [
        'Lamp\\Greeting\\' => __DIR__ . '/lamp/greeting/src/',
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
