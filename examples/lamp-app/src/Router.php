<?php

declare(strict_types=1);

namespace LampApp;

/**
 * Exact-path routes per method. A path with no route is a 404; a path routed for other methods
 * is a 405 with `Allow`. HEAD is answered by the GET route (PHP's SAPIs drop the body).
 */
final class Router
{
    /** @var array<string, array<string, callable(): void>> path => method => handler */
    private array $routes = [];

    public function get(string $path, callable $handler): self
    {
        return $this->add(['GET'], $path, $handler);
    }

    public function post(string $path, callable $handler): self
    {
        return $this->add(['POST'], $path, $handler);
    }

    /** @param list<string> $methods */
    public function add(array $methods, string $path, callable $handler): self
    {
        foreach ($methods as $method) {
            $this->routes[$path][$method] = $handler;
        }
        return $this;
    }

    /** @param callable(): void $notFound */
    public function dispatch(string $method, string $path, callable $notFound): void
    {
        // `/guestbook/` and `/guestbook` are one page.
        if ($path !== '/') {
            $path = rtrim($path, '/');
        }
        $handlers = $this->routes[$path] ?? null;
        if ($handlers === null) {
            $notFound();
            return;
        }
        $handler = $handlers[$method] ?? ($method === 'HEAD' ? $handlers['GET'] ?? null : null);
        if ($handler === null) {
            http_response_code(405);
            header('Allow: ' . implode(', ', array_keys($handlers)));
            header('Content-Type: text/plain; charset=utf-8');
            echo "Method not allowed\n";
            return;
        }
        $handler();
    }
}
