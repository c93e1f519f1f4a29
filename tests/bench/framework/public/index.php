<?php

declare(strict_types=1);

// lamp-bench's framework page (tests/bench/src/framework.rs): a small application on Debian's
// Symfony HttpFoundation and Twig, the same files under every server measured. The benchmark
// copies the libraries into vendor/ and fills var/cache/twig (bin/warm-cache.php) in its copy
// of this folder, as a production build would.
//
//   /       the catalog: a Twig template that extends a layout, 20 items through filters
//   /hello  the front controller without Twig: Request, routing, a text Response (breakdown)

use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;

require dirname(__DIR__) . '/src/bootstrap.php';

$request = Request::createFromGlobals();
$response = match ($request->getPathInfo()) {
    '/' => new Response(twig()->render('catalog.html.twig', [
        'visitor' => $request->query->get('name', 'guest <& friends>'),
        'items' => catalog(),
    ])),
    '/hello' => new Response(
        'Hello, ' . $request->query->get('name', 'world'),
        Response::HTTP_OK,
        ['Content-Type' => 'text/plain; charset=UTF-8'],
    ),
    default => new Response('Not Found', Response::HTTP_NOT_FOUND, ['Content-Type' => 'text/plain']),
};
$response->prepare($request)->send();
