<?php
// Test infrastructure of guests/php/run-phpt.sh, nothing else: the auto_prepend_file of the
// tests that start PHP's test HTTP server (ext/standard/tests/http/server.inc: its own suite's,
// ext/libxml's bug51903, ext/dom's ghsa-p3x9-6h7p-cgfc_*, network's http-stream), and of the
// rest of ext/standard/tests/http (for phpt-proc-open.php). That helper serves from a child made by
// pcntl_fork(), which WASI has not: their `require "./ext/standard/tests/http/server.inc"`
// reads the functions below instead (a stream wrapper for plain files, in place until that
// require), which serve the same responses from a second PHP started through
// phpt-proc-open.php's proc_open() (run-phpt.sh's process bridge) running
// phpt-http-child.php. The client side, what the tests check, is the guest's own.
require __DIR__ . '/phpt-proc-open.php';
const LAMP_PHPT_HTTP_CHILD = __DIR__ . '/phpt-http-child.php';

final class LampPhptServerInc
{
    private const FUNCTIONS = <<<'PHP'
        <?php declare(strict_types=1);
        // guests/php/phpt-http-server.php: PHP's ext/standard/tests/http/server.inc without fork.
        function http_server_skipif() {
            if (!function_exists('proc_open')) die('skip proc_open() not available');
            if (!stream_socket_server('tcp://localhost:0')) die('skip stream_socket_server() failed');
        }

        /* As PHP's: $files are the responses (names of files, data: URIs), or a callable that
         * gets the listening socket and yields them; the server answers one request with each,
         * in order, and writes what it received to $output (a file: the server appends each
         * request before it answers, so a test reads it complete once it has its response). */
        function http_server($files, &$output = null) {
            // The address first (the callable may name it in a response), then the child listens
            // there: reading every response here leaves the child nothing of the test to call.
            $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
            if (!$server) {
                return false;
            }
            $address = stream_socket_get_name($server, false);
            if (is_callable($files)) {
                $files = $files($server);
            }
            $responses = [];
            foreach ($files as $file) {
                $responses[] = file_get_contents($file);
            }
            fclose($server);
            $log = tempnam(sys_get_temp_dir(), 'lamp-http-');
            $output = fopen($log, 'r');
            return lamp_phpt_http_child($address, $log, $responses);
        }

        /* As PHP's: a server that takes one connection, waits, and closes it unanswered. */
        function http_server_sleep($micro_seconds = 500000) {
            $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
            if (!$server) {
                return false;
            }
            $address = stream_socket_get_name($server, false);
            fclose($server);
            return lamp_phpt_http_child($address, '', ['sleep' => $micro_seconds]);
        }

        function lamp_phpt_http_child(string $address, string $log, array $responses) {
            $child = proc_open([PHP_BINARY, '-n', LAMP_PHPT_HTTP_CHILD, $address, $log],
                [0 => ['pipe', 'r'], 1 => ['pipe', 'w']], $pipes);
            if ($child === false) {
                return false;
            }
            fwrite($pipes[0], serialize($responses));
            fclose($pipes[0]);
            $listening = trim((string) fgets($pipes[1])) === 'listening';
            if ($log !== '') {
                // Open here and in the child: gone with them, as PHP's tmpfile().
                unlink($log);
            }
            if (!$listening) {
                proc_terminate($child);
                return false;
            }
            return ['pid' => $child, 'uri' => "http://$address"];
        }

        function http_server_kill($pid) {
            proc_terminate($pid);
            proc_close($pid);
        }
        PHP;

    /** @var resource|null */
    public $context;
    /** @var resource|null the real file, when not server.inc */
    private $file;
    private string $functions = '';
    private int $at = 0;

    public static function install(): void
    {
        stream_wrapper_unregister('file');
        stream_wrapper_register('file', self::class);
    }

    /** Runs $call on the real plain-files wrapper. */
    private static function real(callable $call): mixed
    {
        stream_wrapper_restore('file');
        try {
            return $call();
        } finally {
            self::install();
        }
    }

    public function stream_open(string $path, string $mode, int $options, ?string &$opened): bool
    {
        // (As the test names it: ext/standard/tests/network's as `network/../http/server.inc`.)
        if (preg_match('#/tests/http/server\.inc$#', $path)) {
            // Read once: from here on, the plain files wrapper again.
            $this->functions = self::FUNCTIONS;
            stream_wrapper_restore('file');
            return true;
        }
        $this->file = self::real(fn () => @fopen($path, $mode, (bool) ($options & STREAM_USE_PATH)));
        return $this->file !== false;
    }

    public function stream_read(int $count): string|false
    {
        if ($this->file) {
            return fread($this->file, $count);
        }
        $chunk = substr($this->functions, $this->at, $count);
        $this->at += strlen($chunk);
        return $chunk;
    }

    public function stream_write(string $data): int
    {
        return $this->file ? (int) fwrite($this->file, $data) : 0;
    }

    public function stream_eof(): bool
    {
        return $this->file ? feof($this->file) : $this->at >= strlen($this->functions);
    }

    public function stream_stat(): array|false
    {
        return $this->file ? fstat($this->file) : ['size' => strlen($this->functions)];
    }

    public function stream_set_option(int $option, int $arg1, ?int $arg2): bool
    {
        return false;
    }

    public function stream_close(): void
    {
        if ($this->file) {
            fclose($this->file);
        }
    }

    public function url_stat(string $path, int $flags): array|false
    {
        return self::real(fn () => $flags & STREAM_URL_STAT_QUIET ? @stat($path) : stat($path));
    }
}

// Only for a test that names it (others of the suite start PHP's built-in server with
// sapi/cli/tests/php_cli_server.inc, and the bridge must see its log as a plain file).
$script = (string) ($_SERVER['SCRIPT_FILENAME'] ?? '');
if ($script !== '' && preg_match('~(?<!\w)server\.inc~', (string) @file_get_contents($script))) {
    LampPhptServerInc::install();
}
unset($script);
