<?php

// A handler of the vendor layer's tests: one HTTP call with Guzzle, as the event describes it
// (base URI, method, path, Guzzle's request options, its timeout), and what came back.
require '/opt/vendor/autoload.php';

use GuzzleHttp\Client;
use GuzzleHttp\Exception\GuzzleException;
use GuzzleHttp\Exception\RequestException;
use GuzzleHttp\Utils;

function guzzle(array $event): array
{
    $client = new Client(['base_uri' => $event['base'], 'timeout' => $event['timeout'] ?? 10]);
    $started = microtime(true);
    $result = [];
    try {
        $response = $client->request($event['method'], $event['path'], $event['options'] ?? []);
    } catch (GuzzleException $e) {
        $response = $e instanceof RequestException ? $e->getResponse() : null;
        $result = ['exception' => get_class($e), 'message' => $e->getMessage()];
    }
    return $result + [
        'seconds' => round(microtime(true) - $started, 3),
        'handler' => get_class(Utils::chooseHandler()),
        'status' => $response?->getStatusCode(),
        'reason' => $response?->getReasonPhrase(),
        'headers' => $response?->getHeaders(),
        'body' => $response === null ? null : (string) $response->getBody(),
    ];
}
