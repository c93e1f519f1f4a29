<?php

// A handler of the vendor layer's tests: one HTTP call with Guzzle, as the event describes it
// (base URI, method, path, Guzzle's request options, its timeout), and what came back.
require '/opt/vendor/autoload.php';

use GuzzleHttp\Client;
use GuzzleHttp\Exception\GuzzleException;
use GuzzleHttp\Exception\RequestException;
use GuzzleHttp\TransferStats;

function guzzle(array $event): array
{
    $client = new Client(['base_uri' => $event['base'], 'timeout' => $event['timeout'] ?? 10]);
    $started = microtime(true);
    $result = [];
    // Which of Guzzle's handlers carried the request: curl's reports curl_getinfo() in its
    // transfer stats, the stream handler nothing.
    $via = null;
    $options = ($event['options'] ?? []) + ['on_stats' => function (TransferStats $stats) use (&$via) {
        $via = isset($stats->getHandlerStats()['primary_ip']) ? 'curl' : 'streams';
    }];
    try {
        $response = $client->request($event['method'], $event['path'], $options);
    } catch (GuzzleException $e) {
        $response = $e instanceof RequestException ? $e->getResponse() : null;
        $result = ['exception' => get_class($e), 'message' => $e->getMessage()];
    }
    return $result + [
        'seconds' => round(microtime(true) - $started, 3),
        'handler' => $via,
        'status' => $response?->getStatusCode(),
        'reason' => $response?->getReasonPhrase(),
        'headers' => $response?->getHeaders(),
        'body' => $response === null ? null : (string) $response->getBody(),
    ];
}
