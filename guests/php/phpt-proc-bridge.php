<?php declare(strict_types=1);
// Test infrastructure of guests/php/run-phpt.sh, nothing else: the process bridge. PHP's tests
// of openssl (ServerClientTestCase.inc) and mysqli (fake_server.inc) start a second PHP with
// proc_open(), which WASI has not; phpt-proc-open.php gives the guest a proc_open() that asks
// this native server, on 127.0.0.1, to start it instead. It runs only PHP itself (a command
// that starts with the guest's PHP_BINARY, which is ''), as run-phpt.sh's wrapper, so both
// ends of a test are our PHP; it refuses anything else.
//
// Usage: php8.2 -n phpt-proc-bridge.php WRAPPER ADDRESS_FILE
//   WRAPPER       run-phpt.sh's wrapper (`host php` with the test's grants); children get
//                 LAMP_PHPT_CHILD=1 in their environment, for which it adds --allow-listen
//   ADDRESS_FILE  where to write the address this server listens on (IP:PORT)
// A child's STDERR (or STDIN, STDOUT) given as such is the test process's own, opened through
// /proc/PID/fd/N (the wrapper's, which it names); what is not given is this server's
// (run-phpt.sh logs its stderr). Each child is a process group of its own (setsid), killed
// whole by proc_terminate() and when the guest goes away; SIGTERM kills them all and ends the
// bridge.
//
// The protocol, one line per message, each connection starting with one:
//   OPEN {"cmd":..., "cwd":..., "env":..., "pipes":{"0":"r","1":"w"}, "stdio":{"2":"/proc/PID/fd/2"},
//        "files":{"1":"/tmp/log"}}
//       → OK ID PID | ERR why
//       on the control connection, which stays open: the guest's "process". Then, on it:
//       STATUS → STATUS {proc_get_status()'s array}; TERM SIGNAL → OK;
//       CLOSE → EXIT CODE once the child has exited. Its end kills the child.
//   PIPE ID FD   a connection that is the child's descriptor FD: what the guest writes is the
//                child's input ("r"), or the child's output is written to it ("w"), and an
//                end of either is the other's end of file.

const CLOSE_WAIT = 40;   // s a CLOSE waits for the exit before the child is killed
const KILL_AFTER = 3;    // s between TERM and KILL when the guest is gone
const PENDING_WAIT = 10; // s a new connection has to say what it is
const BUFFER = 1 << 20;  // bytes held per direction before reading stops

[, $wrapper, $addressFile] = $argv + [null, null, null];
if ($wrapper === null || $addressFile === null) {
    fwrite(STDERR, "usage: phpt-proc-bridge.php WRAPPER ADDRESS_FILE\n");
    exit(2);
}
$server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
if (!$server) {
    fwrite(STDERR, "phpt-proc-bridge: cannot listen: $errstr\n");
    exit(1);
}
// The guest sees the host's temporary folder as /tmp (`host php`): a cwd there is mapped back.
$hostTmp = rtrim(sys_get_temp_dir(), '/');

/** @var array<int, array> $children by id */
$children = [];
/** @var array<int, array{conn: resource, buf: string, since: float}> $pending by resource id */
$pending = [];
$nextId = 1;

function log_line(string $message): void
{
    fwrite(STDERR, "phpt-proc-bridge: $message\n");
}

function kill_group(int $pid, string $signal): void
{
    exec('kill -s ' . $signal . ' -- -' . $pid . ' 2>/dev/null');
}

pcntl_async_signals(true);
pcntl_signal(SIGPIPE, SIG_IGN); // a guest gone mid-write is a failed fwrite(), not our end
foreach ([SIGTERM, SIGINT, SIGHUP] as $signal) {
    pcntl_signal($signal, function () use (&$children): void {
        foreach ($children as $child) {
            if ($child['exit'] === null) {
                kill_group($child['pid'], 'KILL');
            }
        }
        exit(0);
    });
}

file_put_contents("$addressFile.new", stream_socket_get_name($server, false));
rename("$addressFile.new", $addressFile);

function open_child(array $request, string $wrapper, string $hostTmp, int $id, $ctl): array|string
{
    $cmd = $request['cmd'] ?? null;
    // PHP_BINARY is '' in the guest: `'' args` (escapeshellarg) or ` "file" args` (sprintf).
    if (is_array($cmd) && ($cmd[0] ?? null) === '') {
        $rest = implode('', array_map(fn ($arg) => ' ' . escapeshellarg((string) $arg), array_slice($cmd, 1)));
    } elseif (is_string($cmd) && (str_starts_with($cmd, "'' ") || str_starts_with($cmd, ' "'))) {
        $rest = str_starts_with($cmd, "''") ? substr($cmd, 2) : $cmd;
    } else {
        $shown = is_array($cmd) ? json_encode($cmd) : (string) $cmd;
        return "the test runner's process bridge runs only PHP itself (a command that starts with PHP_BINARY), not `$shown`";
    }
    // The test's stdio through the shell: PHP cannot open /proc/PID/fd/N of a pipe (its path
    // resolves to `pipe:[N]`), open(2) can.
    $redirects = '';
    foreach ($request['stdio'] ?? [] as $fd => $path) {
        if (is_string($path) && preg_match('~^/proc/\d+/fd/[012]$~', $path)) {
            $redirects .= ' ' . (int) $fd . ($fd === 0 ? '<' : '>>') . escapeshellarg($path);
        }
    }
    // A file the test opened in its /tmp, which is this machine's temporary directory.
    foreach ($request['files'] ?? [] as $fd => $path) {
        if (is_string($path) && str_starts_with($path, '/tmp/') && !str_contains($path, '/..')) {
            $redirects .= ' ' . (int) $fd . ((int) $fd === 0 ? '<' : '>>') . escapeshellarg($hostTmp . substr($path, 4));
        }
    }
    $native = 'exec setsid ' . escapeshellarg($wrapper) . $rest . $redirects;
    $spec = [0 => ['file', '/dev/null', 'r']];
    foreach ($request['pipes'] ?? [] as $fd => $mode) {
        $spec[(int) $fd] = ['pipe', $mode === 'r' ? 'r' : 'w'];
    }
    $cwd = $request['cwd'] ?? null;
    if (is_string($cwd) && $hostTmp !== '/tmp' && ($cwd === '/tmp' || str_starts_with($cwd, '/tmp/'))) {
        $cwd = $hostTmp . substr($cwd, 4);
    }
    if (!is_string($cwd) || !is_dir($cwd)) {
        $cwd = null;
    }
    $env = array_merge(getenv(), ['LAMP_PHPT_CHILD' => '1'], $request['env'] ?? []);
    $proc = proc_open($native, $spec, $pipes, $cwd, $env);
    if (!is_resource($proc)) {
        return 'proc_open failed natively: ' . (error_get_last()['message'] ?? '?');
    }
    $ends = [];
    foreach ($pipes as $fd => $pipe) {
        stream_set_blocking($pipe, false);
        $ends[$fd] = ['mode' => $spec[$fd][1], 'pipe' => $pipe, 'sock' => null, 'buf' => '', 'eof' => false];
    }
    stream_set_blocking($ctl, false);
    return [
        'id' => $id,
        'proc' => $proc,
        'pid' => proc_get_status($proc)['pid'],
        'command' => is_array($cmd) ? implode(' ', array_map('escapeshellarg', $cmd)) : $cmd,
        'ctl' => $ctl,
        'in' => '',
        'out' => '',
        'ends' => $ends,
        'exit' => null,
        'closing' => false,
        'deadline' => null,
    ];
}

function status(array $child): array
{
    $exit = $child['exit'];
    return [
        'command' => $child['command'],
        'pid' => $child['pid'],
        'running' => $exit === null,
        'signaled' => $exit !== null && $exit['signaled'],
        'stopped' => false,
        'exitcode' => $exit === null ? -1 : $exit['exitcode'],
        'termsig' => $exit === null ? 0 : $exit['termsig'],
        'stopsig' => 0,
    ];
}

/** One command of the guest on the control connection. */
function command(array &$child, string $line): void
{
    $words = explode(' ', trim($line));
    switch ($words[0]) {
        case 'STATUS':
            $child['out'] .= 'STATUS ' . json_encode(status($child)) . "\n";
            break;
        case 'TERM':
            if ($child['exit'] === null) {
                kill_group($child['pid'], (string) (int) ($words[1] ?? 15));
            }
            $child['out'] .= "OK\n";
            break;
        case 'CLOSE':
            $child['closing'] = true;
            $child['deadline'] ??= microtime(true) + CLOSE_WAIT;
            break;
        default:
            $child['out'] .= "ERR unknown command\n";
    }
}

/** Writes what it can of `$buf` to `$to` (non-blocking); false when `$to` is gone. */
function flush_to($to, string &$buf): bool
{
    $written = @fwrite($to, $buf);
    if ($written === false) {
        return false;
    }
    $buf = (string) substr($buf, $written);
    return true;
}

while (true) {
    $read = [$server];
    $write = [];
    foreach ($pending as $p) {
        $read[] = $p['conn'];
    }
    foreach ($children as $child) {
        if ($child['ctl'] !== null) {
            $read[] = $child['ctl'];
            if ($child['out'] !== '') {
                $write[] = $child['ctl'];
            }
        }
        foreach ($child['ends'] as $end) {
            [$from, $to] = $end['mode'] === 'r' ? [$end['sock'], $end['pipe']] : [$end['pipe'], $end['sock']];
            if ($from !== null && !$end['eof'] && strlen($end['buf']) < BUFFER) {
                $read[] = $from;
            }
            if ($to !== null && $end['buf'] !== '') {
                $write[] = $to;
            }
        }
    }
    $except = null;
    if (@stream_select($read, $write, $except, 0, 100000) === false) {
        continue; // a signal
    }
    $ready = [];
    foreach (array_merge($read, $write) as $r) {
        $ready[(int) $r] = true;
    }

    if (isset($ready[(int) $server]) && ($conn = @stream_socket_accept($server, 0))) {
        stream_set_blocking($conn, false);
        $pending[(int) $conn] = ['conn' => $conn, 'buf' => '', 'since' => microtime(true)];
    }

    foreach ($pending as $key => &$p) {
        if (isset($ready[$key])) {
            $data = fread($p['conn'], 65536);
            $p['buf'] .= $data;
            if ($data === '' && feof($p['conn'])) {
                fclose($p['conn']);
                unset($pending[$key]);
                continue;
            }
        }
        if (($nl = strpos($p['buf'], "\n")) === false) {
            if (microtime(true) - $p['since'] > PENDING_WAIT) {
                fclose($p['conn']);
                unset($pending[$key]);
            }
            continue;
        }
        $line = substr($p['buf'], 0, $nl);
        $rest = (string) substr($p['buf'], $nl + 1);
        $conn = $p['conn'];
        unset($pending[$key]);
        if (str_starts_with($line, 'OPEN ')) {
            $id = $nextId++;
            $child = open_child((array) json_decode(substr($line, 5), true), $wrapper, $hostTmp, $id, $conn);
            if (is_string($child)) {
                log_line($child);
                stream_set_blocking($conn, true);
                fwrite($conn, "ERR $child\n");
                fclose($conn);
                continue;
            }
            $child['out'] = "OK $id {$child['pid']}\n";
            $child['in'] = $rest;
            $children[$id] = $child;
        } elseif (preg_match('/^PIPE (\d+) (\d+)$/', $line, $m) && isset($children[(int) $m[1]]['ends'][(int) $m[2]])) {
            $end = &$children[(int) $m[1]]['ends'][(int) $m[2]];
            $end['sock'] = $conn;
            if ($end['mode'] === 'r') {
                $end['buf'] .= $rest;
            }
            unset($end);
        } else {
            fclose($conn);
        }
    }
    unset($p);

    foreach ($children as $id => &$child) {
        // The control connection: commands in, replies out, its end kills the child.
        if ($child['ctl'] !== null) {
            if (isset($ready[(int) $child['ctl']])) {
                $data = fread($child['ctl'], 65536);
                $child['in'] .= $data;
                if ($data === '' && feof($child['ctl'])) {
                    fclose($child['ctl']);
                    $child['ctl'] = null;
                }
                if ($child['out'] !== '' && $child['ctl'] !== null && !flush_to($child['ctl'], $child['out'])) {
                    fclose($child['ctl']);
                    $child['ctl'] = null;
                }
            }
            while (($nl = strpos($child['in'], "\n")) !== false) {
                command($child, substr($child['in'], 0, $nl));
                $child['in'] = (string) substr($child['in'], $nl + 1);
            }
        }
        // The pipes, both ways.
        foreach ($child['ends'] as $fd => &$end) {
            [$from, $to] = $end['mode'] === 'r' ? ['sock', 'pipe'] : ['pipe', 'sock'];
            if ($end[$from] !== null && !$end['eof'] && isset($ready[(int) $end[$from]])) {
                $data = fread($end[$from], 65536);
                $end['buf'] .= $data;
                if ($data === '' && feof($end[$from])) {
                    $end['eof'] = true;
                }
            }
            if ($end[$to] !== null && $end['buf'] !== '' && !flush_to($end[$to], $end['buf'])) {
                fclose($end[$to]);
                $end[$to] = null;
                $end['buf'] = '';
            }
            // The end of one side, once all it sent is through, is the end of the other.
            if ($end['eof'] && $end['buf'] === '' && $end[$to] !== null) {
                fclose($end[$to]);
                $end[$to] = null;
            }
            if ($end[$to] === null && $end['eof'] && $end[$from] !== null && $from === 'pipe') {
                fclose($end[$from]);
                $end[$from] = null;
            }
        }
        unset($end);
        // The exit, read once (proc_get_status() gives the exit code only the first time).
        if ($child['exit'] === null) {
            $status = proc_get_status($child['proc']);
            if (!$status['running']) {
                $child['exit'] = [
                    'exitcode' => $status['signaled'] ? -1 : $status['exitcode'],
                    'signaled' => $status['signaled'],
                    'termsig' => $status['termsig'],
                ];
            }
        }
        $now = microtime(true);
        if ($child['exit'] === null) {
            if ($child['ctl'] === null && $child['deadline'] === null) {
                kill_group($child['pid'], 'TERM');
                $child['deadline'] = $now + KILL_AFTER;
            } elseif ($child['deadline'] !== null && $now > $child['deadline']) {
                log_line("child $id ({$child['command']}) did not exit in time: killed");
                kill_group($child['pid'], 'KILL');
                $child['deadline'] = $now + KILL_AFTER;
            }
            continue;
        }
        if ($child['closing'] && $child['ctl'] !== null) {
            $child['closing'] = false;
            $child['out'] .= "EXIT {$child['exit']['exitcode']}\n";
            flush_to($child['ctl'], $child['out']);
        }
        // Gone once the guest has closed it and all the output is through (or a while passed).
        $flowing = false;
        foreach ($child['ends'] as $end) {
            $flowing = $flowing || ($end['mode'] === 'w' && $end['sock'] !== null && !($end['eof'] && $end['buf'] === ''));
        }
        $child['gone'] ??= null;
        if ($child['ctl'] === null) {
            $child['gone'] ??= $now;
            if (!$flowing || $now - $child['gone'] > KILL_AFTER) {
                foreach ($child['ends'] as $end) {
                    foreach (['pipe', 'sock'] as $side) {
                        if ($end[$side] !== null) {
                            @fclose($end[$side]);
                        }
                    }
                }
                proc_close($child['proc']);
                unset($children[$id]);
            }
        }
    }
    unset($child);
}
