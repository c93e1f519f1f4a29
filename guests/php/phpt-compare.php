<?php
// Compares run-tests.php results (-W file: "RESULT<TAB>path" lines) with phpt-expected.txt
// ("SKIP|FAIL path  # reason" lines). Exit 1 on any surprise, either way.
[, $resultsFile, $expectedFile, $srcRoot] = $argv;
$scopes = array_slice($argv, 4);

$expected = [];
foreach (file($expectedFile, FILE_IGNORE_NEW_LINES) as $n => $line) {
    $line = trim($line);
    if ($line === '' || $line[0] === '#') {
        continue;
    }
    if (!preg_match('/^(SKIP|FAIL)\s+(\S+)\s+#\s*(\S.*)$/', $line, $m)) {
        fwrite(STDERR, "$expectedFile:" . ($n + 1) . ": expected `SKIP|FAIL path  # reason`\n");
        exit(2);
    }
    $expected[$m[2]] = $m[1];
}

$counts = [];
$surprises = [];
$seen = [];
foreach (file($resultsFile, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
    [$result, $path] = explode("\t", $line, 2);
    $path = str_starts_with($path, "$srcRoot/") ? substr($path, strlen($srcRoot) + 1) : $path;
    $seen[$path] = true;
    $counts[$result] = ($counts[$result] ?? 0) + 1;
    $status = match ($result) {
        'PASSED', 'XFAILED' => 'PASS',
        'SKIPPED' => 'SKIP',
        default => 'FAIL', // FAILED, BORKED, LEAKED, WARNED, XLEAKED
    };
    $want = $expected[$path] ?? 'PASS';
    if ($status === $want) {
        continue;
    }
    $surprises[] = match (true) {
        $want === 'PASS' => "unexpected $result: $path (fix it, or list it in phpt-expected.txt with a reason)",
        $status === 'PASS' => "now passes: $path (listed as $want: remove it from phpt-expected.txt)",
        default => "$result but listed as $want: $path",
    };
}
foreach ($expected as $path => $want) {
    $inScope = false;
    foreach ($scopes as $s) {
        $inScope = $inScope || str_starts_with($path, rtrim($s, '/') . '/') || $path === $s;
    }
    if ($inScope && !isset($seen[$path])) {
        $surprises[] = "listed but not run: $path";
    }
}

ksort($counts);
echo 'results: ', implode(', ', array_map(fn ($k, $v) => "$k $v", array_keys($counts), $counts)), "\n";
if ($surprises) {
    echo implode("\n", $surprises), "\n";
    echo count($surprises), " surprise(s) against phpt-expected.txt\n";
    exit(1);
}
echo "all as expected (", count($expected), " listed)\n";
