<?php
// Test infrastructure of guests/php/run-phpt.sh, nothing else: the server of
// phpt-http-server.php's http_server(), a second PHP started through the process bridge.
// Listens on the address of its argument, says "listening" on stdout, then answers one
// request with each response (serialized, on stdin), in order, and exits.
$responses = unserialize(stream_get_contents(STDIN));
$server = stream_socket_server("tcp://{$argv[1]}", $errno, $errstr);
if (!$server) {
    fwrite(STDERR, "phpt-http-child: cannot listen on {$argv[1]}: $errstr\n");
    exit(1);
}
echo "listening\n";
foreach ($responses as $response) {
    $client = stream_socket_accept($server, 30);
    if (!$client) {
        exit(1);
    }
    // The request: its head, then as many bytes as its Content-Length says.
    $length = 0;
    while (($line = fgets($client)) !== false && rtrim($line, "\r\n") !== '') {
        if (preg_match('/^Content-Length\s*:\s*(\d+)/i', $line, $m)) {
            $length = (int) $m[1];
        }
    }
    if ($length > 0) {
        stream_get_contents($client, $length);
    }
    fwrite($client, $response);
    fclose($client);
}
