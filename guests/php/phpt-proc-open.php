<?php
// Test infrastructure of guests/php/run-phpt.sh, nothing else: loaded with -d auto_prepend_file
// into the tests of the suites whose helpers are processes (ext/openssl's ServerClientTestCase,
// ext/mysqli's fake server, ext/standard/tests/network). WASI has no processes, so this
// proc_open() asks run-phpt.sh's process bridge (phpt-proc-bridge.php, a native server on
// 127.0.0.1 whose address run-phpt.sh writes beside this file) to start the child: only PHP
// itself (PHP_BINARY), as the same `host php`. The "process" is the control connection to the
// bridge (a stream, so is_resource() holds); each pipe is a connection of its own, so that
// fclose($pipes[0]) is the child's end of input. STDIN, STDOUT and STDERR given as a
// descriptor are the test's own (the bridge opens them through /proc); a file of the test's
// under /tmp is that file (the bridge opens it in the host's temporary directory); others are
// the bridge's.
if (!function_exists('proc_open')) {
    final class LampPhptProcBridge
    {
        /** @var array<int, array{command: string, pid: int}> by the control connection's id */
        public static array $processes = [];

        public static function address(): ?string
        {
            $address = @file_get_contents(__DIR__ . '/bridge-address');
            return $address === false ? null : trim($address);
        }

        public static function connect(string $address, string $first)
        {
            $conn = @stream_socket_client("tcp://$address", $errno, $errstr, 10);
            if ($conn === false) {
                trigger_error("proc_open(): the test runner's process bridge at $address: $errstr", E_USER_WARNING);
                return false;
            }
            fwrite($conn, "$first\n");
            return $conn;
        }

        /** One request on the control connection and its reply line. */
        public static function ask($process, string $request, int $timeout = 30): string
        {
            if (!isset(self::$processes[(int) $process])) {
                throw new TypeError('the process is not one of proc_open()');
            }
            fwrite($process, "$request\n");
            stream_set_timeout($process, $timeout);
            return trim((string) fgets($process));
        }
    }

    function proc_open(array|string $command, array $descriptor_spec, &$pipes, ?string $cwd = null, ?array $env_vars = null, ?array $options = null)
    {
        $address = LampPhptProcBridge::address();
        if ($address === null) {
            trigger_error('proc_open(): no process bridge (run-phpt.sh starts one)', E_USER_WARNING);
            return false;
        }
        $modes = [];
        $stdio = [];
        $files = [];
        // The test's own stdio, which the wrapper names (-d lamp_phpt_stdio=/proc/PID/fd).
        $ours = [STDIN, STDOUT, STDERR];
        foreach ($descriptor_spec as $fd => $spec) {
            if (is_array($spec) && ($spec[0] ?? null) === 'pipe') {
                $modes[$fd] = ($spec[1] ?? 'r')[0] === 'r' ? 'r' : 'w';
            } elseif (is_resource($spec) && ($which = array_search($spec, $ours, true)) !== false
                && ($dir = get_cfg_var('lamp_phpt_stdio'))) {
                $stdio[$fd] = "$dir/$which";
            } elseif (is_resource($spec) && ($meta = stream_get_meta_data($spec))['wrapper_type'] === 'plainfile') {
                // A file of the test's (a server's log, in /tmp): the child appends to it.
                $files[$fd] = $meta['uri'];
            }
        }
        $request = [
            'cmd' => $command, 'cwd' => $cwd ?? getcwd(), 'env' => $env_vars,
            'pipes' => (object) $modes, 'stdio' => (object) $stdio, 'files' => (object) $files,
        ];
        $control = LampPhptProcBridge::connect($address, 'OPEN ' . json_encode($request));
        if ($control === false) {
            return false;
        }
        stream_set_timeout($control, 30);
        $reply = trim((string) fgets($control));
        if (!str_starts_with($reply, 'OK ')) {
            fclose($control);
            trigger_error('proc_open(): ' . (substr($reply, 4) ?: 'no answer from the process bridge'), E_USER_WARNING);
            return false;
        }
        [, $id, $pid] = explode(' ', $reply);
        $pipes = [];
        foreach ($modes as $fd => $mode) {
            $pipe = LampPhptProcBridge::connect($address, "PIPE $id $fd");
            if ($pipe === false) {
                fclose($control);
                return false;
            }
            $pipes[$fd] = $pipe;
        }
        LampPhptProcBridge::$processes[(int) $control] = [
            'command' => is_array($command) ? implode(' ', array_map('escapeshellarg', $command)) : $command,
            'pid' => (int) $pid,
        ];
        return $control;
    }

    function proc_close($process): int
    {
        $reply = LampPhptProcBridge::ask($process, 'CLOSE', 60);
        unset(LampPhptProcBridge::$processes[(int) $process]);
        fclose($process);
        return str_starts_with($reply, 'EXIT ') ? (int) substr($reply, 5) : -1;
    }

    function proc_terminate($process, int $signal = 15): bool
    {
        return LampPhptProcBridge::ask($process, "TERM $signal") === 'OK';
    }

    function proc_get_status($process): array
    {
        $reply = LampPhptProcBridge::ask($process, 'STATUS');
        $status = str_starts_with($reply, 'STATUS ') ? json_decode(substr($reply, 7), true) : null;
        return $status ?? LampPhptProcBridge::$processes[(int) $process] + [
            'running' => false, 'signaled' => false, 'stopped' => false,
            'exitcode' => -1, 'termsig' => 0, 'stopsig' => 0,
        ];
    }
}
