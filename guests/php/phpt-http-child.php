<?php
// Test infrastructure of guests/php/run-phpt.sh, nothing else: the server of
// phpt-http-server.php's http_server() and http_server_sleep(), a second PHP started through
// the process bridge. Listens on the address of its first argument, says "listening" on
// stdout, then answers one request with each response (serialized, on stdin), in order,
// appending each request to the file of its second argument before it answers; or, given
// ['sleep' => MICROSECONDS], takes one connection and closes it after that long.
$responses = unserialize(stream_get_contents(STDIN));
$server = stream_socket_server("tcp://{$argv[1]}", $errno, $errstr);
if (!$server) {
    fwrite(STDERR, "phpt-http-child: cannot listen on {$argv[1]}: $errstr\n");
    exit(1);
}
if (isset($responses['sleep'])) {
    echo "listening\n";
    $client = stream_socket_accept($server, 30);
    usleep($responses['sleep']);
    exit(0);
}
// Opened before "listening": the test removes the file's name once it hears that.
$log = fopen($argv[2], 'a');
echo "listening\n";
foreach ($responses as $response) {
    $client = stream_socket_accept($server, 30);
    if (!$client) {
        exit(1);
    }
    // The request: its head, then as many bytes as its Content-Length says.
    $length = 0;
    while (($line = fgets($client)) !== false) {
        fwrite($log, $line);
        if (rtrim($line, "\r\n") === '') {
            break;
        }
        if (preg_match('/^Content-Length\s*:\s*(\d+)/i', $line, $m)) {
            $length = (int) $m[1];
        }
    }
    if ($length > 0) {
        fwrite($log, stream_get_contents($client, $length));
    }
    fflush($log);
    fwrite($client, $response);
    fclose($client);
}
