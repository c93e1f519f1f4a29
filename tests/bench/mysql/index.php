<?php
// lamp-bench's MySQL page (tests/bench/src/mysql.rs), the same file under `host serve` and
// under nginx + PHP-FPM: what a request of a PHP app does with its database when it keeps no
// persistent connection. Connect (PDO, mysqlnd), one prepared statement, close.
//
//   /select?id=N            the row of `items` with primary key N, as JSON
//   /select2?id=N           the same twice on one connection (the breakdown: a second statement)
//   /insert?client=C&seq=S  one row into `hits`; its id
//   /connect                connect and close, no statement (the breakdown)
//   /none                   no database at all (the breakdown: the request alone)
//
// The settings come from the environment (`host serve --env`, PHP-FPM's `env[...]`):
// DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD.

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/none') {
    echo 'none';
    return;
}
$pdo = new PDO(
    sprintf('mysql:host=%s;port=%d;dbname=%s;charset=utf8mb4',
        getenv('DB_HOST'), getenv('DB_PORT'), getenv('DB_NAME')),
    getenv('DB_USER'),
    getenv('DB_PASSWORD'),
    [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        // The server's prepared statements (prepare, execute, close: three round trips), not
        // PDO's emulation in the client.
        PDO::ATTR_EMULATE_PREPARES => false,
    ],
);
switch ($path) {
    case '/select':
        $statement = $pdo->prepare('SELECT id, name, qty FROM items WHERE id = ?');
        $statement->execute([(int) ($_GET['id'] ?? 0)]);
        header('Content-Type: application/json');
        echo json_encode($statement->fetch(PDO::FETCH_ASSOC));
        break;
    case '/select2':
        // A page with more than one query: the first statement closed before the second.
        for ($i = 0; $i < 2; $i++) {
            $statement = $pdo->prepare('SELECT id, name, qty FROM items WHERE id = ?');
            $statement->execute([(int) ($_GET['id'] ?? 0)]);
            $row = $statement->fetch(PDO::FETCH_ASSOC);
            $statement = null;
        }
        header('Content-Type: application/json');
        echo json_encode($row);
        break;
    case '/insert':
        $statement = $pdo->prepare('INSERT INTO hits (client, seq) VALUES (?, ?)');
        $statement->execute([(int) $_GET['client'], (int) $_GET['seq']]);
        echo $pdo->lastInsertId();
        break;
    case '/connect':
        echo 'connected';
        break;
    default:
        http_response_code(404);
        echo "no page $path";
}
// Closed now, not at the end of the request: the statement first, then the connection.
$statement = null;
$pdo = null;
