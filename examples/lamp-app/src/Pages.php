<?php

declare(strict_types=1);

namespace LampApp;

/** The routes' handlers: each reads the request superglobals and writes the response. */
final class Pages
{
    /** Session cookie settings: not readable by scripts, not sent on cross-site posts. */
    private const SESSION = [
        'cookie_httponly' => true,
        'cookie_samesite' => 'Lax',
        'use_strict_mode' => true,
    ];

    /** Where uploads are kept: the temp dir (the app's folder is read-only on Lambda). */
    public static function uploadDir(): string
    {
        return sys_get_temp_dir() . '/lamp-app-uploads';
    }

    public static function home(): void
    {
        // An existing session is resumed for the message left by a guestbook post; a first
        // visit starts none (no session file, no cookie).
        $flash = null;
        if (isset($_COOKIE[session_name()])) {
            session_start(self::SESSION);
            $flash = $_SESSION['flash'] ?? null;
            unset($_SESSION['flash']);
            session_write_close();
        }
        $author = $_COOKIE['author'] ?? null;
        $entries = Guestbook::open()->entries();

        $body = '<h1>' . (is_string($author) ? 'Welcome back, ' . View::e($author) : 'Welcome') . '</h1>';
        if (is_string($flash)) {
            $body .= '<p class="flash">' . View::e($flash) . '</p>';
        }
        $body .= <<<'HTML'
            <p>A PHP web app behind a front controller: dynamic pages from PHP, static files from
            <code>/assets/</code>.</p>
            <ul>
            <li><a href="/guestbook">Sign the guestbook</a> (a form, a session, a cookie, a redirect)</li>
            <li><a href="/upload">Upload a file</a> (multipart/form-data)</li>
            <li><a href="/hello">Hello, world</a> (the smallest page)</li>
            <li><a href="/api/info">/api/info</a> (JSON)</li>
            <li><a href="/health.php">/health.php</a> (a PHP file of its own, not the front controller)</li>
            </ul>
            HTML;
        $body .= '<h2>Guestbook</h2>';
        if ($entries === []) {
            $body .= '<p>No entries yet.</p>';
        } else {
            $body .= '<ol class="entries">';
            foreach ($entries as $entry) {
                $body .= sprintf(
                    '<li><strong>%s</strong> <time datetime="%s">%s</time><p>%s</p></li>',
                    View::e((string) ($entry['name'] ?? '')),
                    date(DATE_ATOM, (int) ($entry['time'] ?? 0)),
                    date('Y-m-d H:i', (int) ($entry['time'] ?? 0)),
                    nl2br(View::e((string) ($entry['message'] ?? '')), false),
                );
            }
            $body .= '</ol>';
        }
        echo View::page('Home', $body);
    }

    public static function guestbookForm(): void
    {
        session_start(self::SESSION);
        $name = is_string($_COOKIE['author'] ?? null) ? $_COOKIE['author'] : '';
        echo View::page('Guestbook', self::guestbookFormHtml($name, '', []));
    }

    public static function guestbookPost(): void
    {
        session_start(self::SESSION);
        if (!Csrf::valid($_POST['csrf'] ?? null)) {
            http_response_code(403);
            echo View::page('Forbidden', '<h1>Forbidden</h1><p>The form has expired or did not come from this site. '
                . '<a href="/guestbook">Load it again</a>.</p>');
            return;
        }
        $name = trim(is_string($_POST['name'] ?? null) ? $_POST['name'] : '');
        $message = trim(is_string($_POST['message'] ?? null) ? $_POST['message'] : '');
        $errors = Guestbook::validate($name, $message);
        if ($errors !== []) {
            http_response_code(422);
            echo View::page('Guestbook', self::guestbookFormHtml($name, $message, $errors));
            return;
        }
        Guestbook::open()->add($name, $message);
        setcookie('author', $name, [
            'expires' => time() + 30 * 24 * 3600,
            'path' => '/',
            'httponly' => true,
            'samesite' => 'Lax',
        ]);
        $_SESSION['flash'] = "Thanks, {$name}: your entry is below.";
        // Redirect after POST: reloading the page that follows does not post again.
        header('Location: /', true, 303);
    }

    /** @param array<string, string> $errors */
    private static function guestbookFormHtml(string $name, string $message, array $errors): string
    {
        $error = static fn (string $field): string => isset($errors[$field])
            ? '<span class="error">' . View::e($errors[$field]) . '</span>'
            : '';
        return sprintf(
            <<<'HTML'
                <h1>Sign the guestbook</h1>
                <form method="post" action="/guestbook">
                <input type="hidden" name="csrf" value="%s">
                <label>Your name <input name="name" value="%s" maxlength="40" required></label> %s
                <label>Message <textarea name="message" rows="4" maxlength="500" required>%s</textarea></label> %s
                <button>Sign</button>
                </form>
                HTML,
            View::e(Csrf::token()),
            View::e($name),
            $error('name'),
            View::e($message),
            $error('message'),
        );
    }

    public static function uploadForm(): void
    {
        echo View::page('Upload', self::uploadFormHtml());
    }

    public static function uploadPost(): void
    {
        $file = $_FILES['file'] ?? null;
        if (!is_array($file) || !is_int($file['error'] ?? null)) {
            // Over post_max_size PHP drops the whole body: no $_FILES, no $_POST.
            $tooLarge = (int) ($_SERVER['CONTENT_LENGTH'] ?? 0) > 0 && $_POST === [];
            self::uploadFailed($tooLarge ? 413 : 400, $tooLarge ? 'The upload is too large.' : 'Choose a file.');
            return;
        }
        if ($file['error'] !== UPLOAD_ERR_OK) {
            [$status, $reason] = match ($file['error']) {
                UPLOAD_ERR_INI_SIZE, UPLOAD_ERR_FORM_SIZE => [413, 'The file is too large (limit ' . ini_get('upload_max_filesize') . ').'],
                UPLOAD_ERR_NO_FILE => [400, 'Choose a file.'],
                UPLOAD_ERR_PARTIAL => [400, 'The upload was interrupted.'],
                default => [500, "The upload failed (error {$file['error']})."],
            };
            self::uploadFailed($status, $reason);
            return;
        }
        $sha256 = hash_file('sha256', $file['tmp_name']);
        $safeName = substr(preg_replace('/[^A-Za-z0-9._-]+/', '_', basename((string) $file['name'])) ?? 'file', 0, 100);
        $dir = self::uploadDir();
        if (!is_dir($dir) && !mkdir($dir, 0700, true) && !is_dir($dir)) {
            throw new \RuntimeException("cannot create {$dir}");
        }
        $target = "{$dir}/" . substr($sha256, 0, 16) . "-{$safeName}";
        if (!move_uploaded_file($file['tmp_name'], $target)) {
            throw new \RuntimeException("cannot move the upload to {$target}");
        }
        $rows = [
            'Name' => (string) $file['name'],
            'Size' => number_format(filesize($target)) . ' bytes',
            'Type (as sent)' => (string) $file['type'],
            'SHA-256' => $sha256,
            'Stored as' => $target,
        ];
        $body = '<h1>Uploaded</h1><table class="facts">';
        foreach ($rows as $label => $value) {
            $body .= '<tr><th>' . View::e($label) . '</th><td><code>' . View::e($value) . '</code></td></tr>';
        }
        $body .= '</table>' . self::uploadFormHtml();
        echo View::page('Uploaded', $body);
    }

    private static function uploadFailed(int $status, string $reason): void
    {
        http_response_code($status);
        echo View::page('Upload', '<p class="error">' . View::e($reason) . '</p>' . self::uploadFormHtml());
    }

    private static function uploadFormHtml(): string
    {
        return sprintf(
            <<<'HTML'
                <h2>Upload a file</h2>
                <form method="post" action="/upload" enctype="multipart/form-data">
                <input type="file" name="file" required> <button>Upload</button>
                <small>up to %s</small>
                </form>
                HTML,
            View::e((string) ini_get('upload_max_filesize')),
        );
    }

    /** The benchmark's page: the front controller and router, and as little else as possible. */
    public static function hello(): void
    {
        echo "<!doctype html>\n<title>Hello</title>\n<p>Hello, world</p>\n";
    }

    public static function info(): void
    {
        $extensions = get_loaded_extensions();
        sort($extensions);
        header('Content-Type: application/json; charset=utf-8');
        header('Cache-Control: no-store');
        echo json_encode([
            'app' => 'lamp-app',
            'php' => PHP_VERSION,
            'sapi' => PHP_SAPI,
            'extensions' => $extensions,
            'request' => [
                'method' => $_SERVER['REQUEST_METHOD'] ?? null,
                'uri' => $_SERVER['REQUEST_URI'] ?? null,
                'query' => $_GET,
                'https' => ($_SERVER['HTTPS'] ?? '') !== '' && ($_SERVER['HTTPS'] ?? '') !== 'off',
                'remote_addr' => $_SERVER['REMOTE_ADDR'] ?? null,
            ],
            'guestbook_entries' => ($guestbook = Guestbook::open())->count(),
            'database' => $guestbook->driver(),
            'temp_dir' => sys_get_temp_dir(),
            'time' => date(DATE_ATOM),
            'memory_peak_bytes' => memory_get_peak_usage(),
        ], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR), "\n";
    }

    public static function notFound(): void
    {
        http_response_code(404);
        echo View::page('Not found', '<h1>Not found</h1><p>No page at <code>'
            . View::e((string) ($_SERVER['REQUEST_URI'] ?? '')) . '</code>. <a href="/">Home</a>.</p>');
    }
}
