<?php
// The seed's bootstrap, as the blog writes it, with PHP's curl extension instead of Guzzle:
// getNextRequest / handler / sendResponse in a loop. With `--once` it serves one event and
// exits (the process-per-event peer); without, it serves until killed (the long-lived peer).

$api = getenv('AWS_LAMBDA_RUNTIME_API');
$handler = getenv('_HANDLER');
require_once getenv('LAMBDA_TASK_ROOT') . '/src/' . $handler . '.php';
$once = in_array('--once', $argv, true);
$curl = curl_init();

function getNextRequest($curl, $api)
{
    $headers = [];
    curl_setopt_array($curl, [
        CURLOPT_URL => "http://$api/2018-06-01/runtime/invocation/next",
        CURLOPT_HTTPGET => true,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HEADERFUNCTION => function ($c, $line) use (&$headers) {
            $parts = explode(':', $line, 2);
            if (count($parts) === 2) {
                $headers[strtolower(trim($parts[0]))] = trim($parts[1]);
            }
            return strlen($line);
        },
    ]);
    $body = curl_exec($curl);
    return ['invocationId' => $headers['lambda-runtime-aws-request-id'], 'payload' => json_decode($body, true)];
}

function sendResponse($curl, $api, $invocationId, $response)
{
    curl_setopt_array($curl, [
        CURLOPT_URL => "http://$api/2018-06-01/runtime/invocation/$invocationId/response",
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => $response,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HEADERFUNCTION => fn ($c, $line) => strlen($line),
    ]);
    curl_exec($curl);
}

do {
    $request = getNextRequest($curl, $api);
    $response = $handler($request['payload']);
    sendResponse($curl, $api, $request['invocationId'], $response);
} while (!$once);
