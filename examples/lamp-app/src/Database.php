<?php

declare(strict_types=1);

namespace LampApp;

use PDO;

/**
 * The app's database, chosen by the environment as the SAM template sets it:
 * LAMP_APP_DB_DSN (a PDO DSN, e.g. `mysql:host=my-proxy.proxy-xxxx.eu-west-1.rds.amazonaws.com;
 * dbname=app`), LAMP_APP_DB_USER, LAMP_APP_DB_PASSWORD, and LAMP_APP_DB_SSL_CA (a CA file:
 * MySQL over TLS, the server's certificate verified). With no DSN, SQLite in the temp dir:
 * nothing to run, and the data lasts as long as the execution environment.
 */
final class Database
{
    public static function connect(): PDO
    {
        $dsn = (string) getenv('LAMP_APP_DB_DSN');
        if ($dsn === '') {
            $dsn = 'sqlite:' . sys_get_temp_dir() . '/lamp-app.sqlite';
        }
        $options = [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
            PDO::ATTR_TIMEOUT => 5,
        ];
        $ca = (string) getenv('LAMP_APP_DB_SSL_CA');
        if ($ca !== '' && str_starts_with($dsn, 'mysql:')) {
            $options[PDO::MYSQL_ATTR_SSL_CA] = $ca;
            $options[PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT] = true;
        }
        $user = getenv('LAMP_APP_DB_USER');
        $password = getenv('LAMP_APP_DB_PASSWORD');
        return new PDO(
            $dsn,
            $user === false || $user === '' ? null : $user,
            $password === false || $password === '' ? null : $password,
            $options,
        );
    }
}
