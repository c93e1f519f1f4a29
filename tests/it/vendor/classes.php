<?php

// A handler of the vendor layer's tests: every class, interface, trait and enum the layer's
// files declare, read with PHP's tokenizer (not loaded), then asked for by name: the
// autoloader must find each in the very file that declares it. And the functions the
// packages' "files" define.
require '/opt/vendor/autoload.php';

function classes(): array
{
    $declared = [];
    $files = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator('/opt/vendor', FilesystemIterator::SKIP_DOTS)
    );
    foreach ($files as $file) {
        if ($file->getExtension() === 'php') {
            foreach (declared_in($file->getPathname()) as $name) {
                $declared[$name] = $file->getPathname();
            }
        }
    }
    ksort($declared);
    $loaded = [];
    $failed = [];
    foreach ($declared as $name => $file) {
        $found = class_exists($name) || interface_exists($name) || trait_exists($name)
            || enum_exists($name);
        $from = $found ? (new ReflectionClass($name))->getFileName() : null;
        if ($from === $file) {
            $loaded[] = $name;
        } else {
            $failed[$name] = $found ? "loaded from $from, declared in $file" : "not found; declared in $file";
        }
    }
    $functions = [
        'GuzzleHttp\describe_type',
        'GuzzleHttp\Promise\promise_for',
        'getallheaders',
        'trigger_deprecation',
    ];
    return [
        'loaded' => $loaded,
        'failed' => $failed,
        'functions' => array_values(array_filter($functions, 'function_exists')),
    ];
}

/** The names a PHP file declares: `namespace` plus each class-like name after its keyword. */
function declared_in(string $path): array
{
    $tokens = array_values(array_filter(
        token_get_all(file_get_contents($path)),
        fn($t) => !is_array($t) || !in_array($t[0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true)
    ));
    $namespace = '';
    $names = [];
    foreach ($tokens as $i => $token) {
        if (!is_array($token)) {
            continue;
        }
        $next = $tokens[$i + 1] ?? null;
        if ($token[0] === T_NAMESPACE && is_array($next)) {
            $namespace = $next[1] . '\\';
        }
        $previous = $tokens[$i - 1] ?? null;
        $keyword = in_array($token[0], [T_CLASS, T_INTERFACE, T_TRAIT, T_ENUM], true);
        // Not `Foo::class`, not `new class`.
        $after = is_array($previous) && in_array($previous[0], [T_DOUBLE_COLON, T_NEW], true);
        if ($keyword && !$after && is_array($next) && $next[0] === T_STRING) {
            $names[] = $namespace . $next[1];
        }
    }
    return $names;
}
