<?php
// Compares run-tests.php results (-W file: "RESULT<TAB>path" lines) with phpt-expected.txt
// ("SKIP|FAIL path  # reason" lines). Exit 1 on any surprise, either way. With
// `--native FILE` (native php8.2's results on the same tests) it also prints, per suite, ours
// against native's: passed, and how many of native's passes pass here too.
[, $resultsFile, $expectedFile, $srcRoot] = $argv;
$scopes = array_slice($argv, 4);
$nativeFile = null;
if (($scopes[0] ?? '') === '--native') {
    $nativeFile = $scopes[1];
    $scopes = array_slice($scopes, 2);
}

/**
 * A result's test, as phpt-expected.txt names it: the path from the source root. A test run
 * through another's --REDIRECTTEST-- (ext/pdo/tests/* for ext/pdo_sqlite/tests/common.phpt) is
 * written `# SRC/REDIRECTING.phpt: SRC/TEST.phpt` by run-tests.php and becomes
 * `REDIRECTING.phpt:TEST.phpt`, which lies in the redirecting test's suite.
 */
function test_name(string $path, string $srcRoot): string
{
    $relative = fn (string $p): string => str_starts_with($p, "$srcRoot/") ? substr($p, strlen($srcRoot) + 1) : $p;
    if (preg_match('/^# (\S+): (\S+)$/', $path, $m)) {
        return $relative($m[1]) . ':' . $relative($m[2]);
    }
    return $relative($path);
}

/** @return array<string, string> path => PASS|SKIP|FAIL */
function statuses(string $file, string $srcRoot): array
{
    $out = [];
    foreach (file($file, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
        [$result, $path] = explode("\t", $line, 2);
        $path = test_name($path, $srcRoot);
        $out[$path] = match ($result) {
            'PASSED', 'XFAILED' => 'PASS',
            'SKIPPED' => 'SKIP',
            default => 'FAIL',
        };
    }
    return $out;
}

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
    $path = test_name($path, $srcRoot);
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
if ($nativeFile !== null) {
    $ours = statuses($resultsFile, $srcRoot);
    $native = statuses($nativeFile, $srcRoot);
    printf("%-28s %24s %24s %s\n", 'suite', 'ours pass/skip/fail', 'native pass/skip/fail', "native's passes passing here");
    foreach ($scopes as $scope) {
        $in = fn (string $path): bool => str_starts_with($path, rtrim($scope, '/') . '/') || $path === $scope;
        $tally = function (array $statuses) use ($in): array {
            $t = ['PASS' => 0, 'SKIP' => 0, 'FAIL' => 0];
            foreach ($statuses as $path => $status) {
                if ($in($path)) {
                    $t[$status]++;
                }
            }
            return $t;
        };
        [$o, $n] = [$tally($ours), $tally($native)];
        $both = 0;
        foreach ($native as $path => $status) {
            $both += (int) ($in($path) && $status === 'PASS' && ($ours[$path] ?? '') === 'PASS');
        }
        printf("%-28s %24s %24s %d/%d (%.1f%%)\n", $scope, implode('/', $o), implode('/', $n), $both, $n['PASS'],
            $n['PASS'] ? 100 * $both / $n['PASS'] : 100);
    }
}
if ($surprises) {
    echo implode("\n", $surprises), "\n";
    echo count($surprises), " surprise(s) against phpt-expected.txt\n";
    exit(1);
}
echo "all as expected (", count($expected), " listed)\n";
