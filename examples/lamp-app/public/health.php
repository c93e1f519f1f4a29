<?php

// A PHP file of its own: requested as /health.php it runs directly, without the front
// controller (nginx: the `$uri` of try_files; wasm-lamp routes the same way, locally and on
// Lambda).
header('Content-Type: text/plain; charset=utf-8');
header('Cache-Control: no-store');
echo "ok\n";
