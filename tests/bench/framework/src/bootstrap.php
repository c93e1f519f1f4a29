<?php

declare(strict_types=1);

// What the front controller and bin/warm-cache.php share: the libraries' autoloaders (Debian's,
// copied to vendor/ with their layout under /usr/share/php) and the Twig environment.

use Twig\Environment;
use Twig\Loader\FilesystemLoader;
use Twig\TwigFilter;

require dirname(__DIR__) . '/vendor/Symfony/Component/HttpFoundation/autoload.php';
require dirname(__DIR__) . '/vendor/Twig/autoload.php';

/** The app's Twig: templates from templates/, compiled ones from the cache warmed at build. */
function twig(): Environment
{
    $app = dirname(__DIR__);
    // The loader's root is the app's folder, so that a template's cache key (its path from
    // the root) is the same wherever the folder is: warmed natively, read under /var/task.
    $twig = new Environment(new FilesystemLoader('templates', $app), [
        'cache' => $app . '/var/cache/twig',
        // Production: the cache is read-only and never checked against the templates.
        'auto_reload' => false,
        'strict_variables' => true,
    ]);
    $twig->addFilter(new TwigFilter('price', fn (int $cents): string =>
        number_format($cents / 100, 2, '.', ',') . ' €'));
    return $twig;
}

/**
 * The catalog's 20 items, as a repository would return them.
 *
 * @return list<array{sku: string, name: string, cents: int, tags: list<string>, stock: int}>
 */
function catalog(): array
{
    $names = ['lamp', 'chair', 'desk', 'shelf', 'rug'];
    $tags = ['new', 'sale', 'oak', 'steel', 'wool'];
    $items = [];
    for ($i = 1; $i <= 20; $i++) {
        $items[] = [
            'sku' => sprintf('SKU-%04d', $i * 37),
            // One name with markup: the template must escape it.
            'name' => $i === 7 ? 'desk <b>"pro"</b> & co' : $names[$i % 5] . ' no. ' . $i,
            'cents' => $i * 1999 % 50000 + 500,
            'tags' => [$tags[$i % 5], $tags[($i * 3) % 5]],
            'stock' => $i % 4 === 0 ? 0 : $i * 3,
        ];
    }
    return $items;
}
