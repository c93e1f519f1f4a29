<?php

declare(strict_types=1);

namespace Lamp\Greeting;

/** The vendor layer's sample library: proves a handler can autoload code from /opt/vendor. */
final class Greeter
{
    public function __construct(private string $greeting = 'Hello')
    {
    }

    public function greet(string $name): string
    {
        return "{$this->greeting}, {$name}";
    }
}
