<?php
// The PHP half of the handler runtime, compiled in each instance's request by lamp_php.c
// (which strips this first line and embeds the rest); under wizer, once at build time. It
// finds the user's handler, calls it and turns every outcome into [true, response] or
// [false, errorType, errorMessage, stackTrace].
// Fatal errors (bailouts) never come back here: lamp_php.c reports those.
//
// Handler lookup, given LAMP_PHP_SCRIPT (absolute path) and LAMP_PHP_FUNCTION (may be empty):
// - the script is required once, in the global scope (as AWS's PHP runtime and php-cli do:
//   its top-level variables are globals); lamp_php.c runs LOADER for that, and the return
//   value or the Throwable is kept in Loaded;
// - a named function that exists is called;
// - otherwise, if the script returned a callable (Bref style), that is called, so a Bref
//   handler keeps working whatever the function name is set to;
// - otherwise Runtime.NoSuchHandler.
// The handler gets (array $event, Lamp\Context $context); the event is the JSON decoded to
// associative arrays.

namespace Lamp;

const LAMP_PRELUDE_FILE = __FILE__;
/** The name lamp_php.c gives the loader's eval()'d code (PHP shows it as "NAME(1) : eval()'d code"). */
const LOADER_FILE = 'lamp-loader';


/** The script's outcome, set by the loader that lamp_php.c evaluates in the global scope. */
final class Loaded
{
    public static string $script = '';
    public static mixed $returned = null;
    public static ?\Throwable $thrown = null;
    /** Set when there is no script to load: the failure to report. */
    public static ?array $failure = null;

    /** Whether the loader should require self::$script. */
    public static function prepare(): bool
    {
        // php-cli's stream constants, which handlers use for logging (`fwrite(STDERR, ...)`);
        // the embed SAPI has none. php://stdout etc. reuse fds 0-2 without closing them.
        // Here, not at the top of this file: that part runs at build time under wizer.
        if (!\defined('STDIN')) {
            \define('STDIN', \fopen('php://stdin', 'rb'));
            \define('STDOUT', \fopen('php://stdout', 'wb'));
            \define('STDERR', \fopen('php://stderr', 'wb'));
        }
        $script = (string) getenv('LAMP_PHP_SCRIPT');
        if ($script === '') {
            self::$failure = failure('Runtime.NoSuchHandler', 'no handler script: the host did not set LAMP_PHP_SCRIPT');
        } elseif (!is_file($script)) {
            self::$failure = failure('Runtime.NoSuchHandler', "handler script $script not found: check the handler setting and that the file is in the deployment package");
        }
        self::$script = $script;
        return self::$failure === null;
    }
}

/** What Lambda tells about the invocation, as the handler's second argument. */
final class Context implements \JsonSerializable
{
    public readonly string $requestId;

    public function __construct(
        public readonly string $awsRequestId,
        public readonly int $deadlineMs,
        public readonly string $invokedFunctionArn,
        public readonly ?string $traceId,
        public readonly ?string $clientContext,
        public readonly ?string $cognitoIdentity,
        public readonly string $functionName,
        public readonly string $functionVersion,
        public readonly int $memoryLimitInMb,
        public readonly string $logGroupName,
        public readonly string $logStreamName,
    ) {
        $this->requestId = $awsRequestId;
    }

    public function getRemainingTimeInMillis(): int
    {
        return max(0, $this->deadlineMs - (int) floor(microtime(true) * 1000));
    }

    public function getAwsRequestId(): string { return $this->awsRequestId; }
    public function getDeadlineMs(): int { return $this->deadlineMs; }
    public function getInvokedFunctionArn(): string { return $this->invokedFunctionArn; }
    public function getTraceId(): ?string { return $this->traceId; }
    public function getFunctionName(): string { return $this->functionName; }
    public function getFunctionVersion(): string { return $this->functionVersion; }
    public function getMemoryLimitInMb(): int { return $this->memoryLimitInMb; }
    public function getLogGroupName(): string { return $this->logGroupName; }
    public function getLogStreamName(): string { return $this->logStreamName; }

    public function jsonSerialize(): array
    {
        return get_object_vars($this);
    }
}

/** @return array{0: false, 1: string, 2: string, 3: list<string>} */
function failure(string $type, string $message, array $trace = []): array
{
    return [false, $type, $message, $trace];
}

/** Frames of a Throwable, innermost first, without this runtime's own frames. */
function frames(\Throwable $e): array
{
    $lines = [$e->getFile() . ':' . $e->getLine()];
    foreach ($e->getTrace() as $i => $f) {
        if (($f['file'] ?? '') === LAMP_PRELUDE_FILE || str_starts_with($f['file'] ?? '', LOADER_FILE)) {
            break; // the call into the handler (or the require of it): below is the runtime
        }
        $where = isset($f['file']) ? $f['file'] . '(' . ($f['line'] ?? 0) . ')' : '[internal function]';
        $lines[] = "#$i $where: " . ($f['class'] ?? '') . ($f['type'] ?? '') . $f['function'] . '()';
    }
    return $lines;
}

/** Runs the handler once; called by lamp_php.c with the raw event and the context fields. */
function run(string $event, array $context): array
{
    if (Loaded::$failure !== null) {
        return Loaded::$failure;
    }
    if (Loaded::$thrown !== null) {
        return failure(get_class(Loaded::$thrown), Loaded::$thrown->getMessage(), frames(Loaded::$thrown));
    }
    $script = Loaded::$script;
    $returned = Loaded::$returned;
    $function = (string) getenv('LAMP_PHP_FUNCTION');
    try {
        if ($function !== '' && is_callable($function)) {
            $handler = $function;
        } elseif (is_callable($returned)) {
            $handler = $returned;
        } elseif ($function !== '') {
            return failure('Runtime.NoSuchHandler', "function $function() is not defined in $script (and the script does not return a callable)");
        } else {
            return failure('Runtime.NoSuchHandler', "$script does not return a callable and no handler function was named");
        }

        try {
            $data = json_decode($event, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            return failure('Runtime.InvalidEvent', 'the event is not valid JSON: ' . $e->getMessage());
        }

        $result = $handler($data, new Context(...$context));

        if (is_string($result)) {
            // The response is JSON's text: bytes that are not UTF-8 cannot cross (the host
            // would refuse them as a trap, with no word of where they came from).
            if (!mb_check_encoding($result, 'UTF-8')) {
                return failure('Runtime.MarshalError', 'the handler returned a string that is not valid UTF-8 (' . strlen($result) . ' bytes): return text as UTF-8 (mb_convert_encoding()), or binary data as base64_encode()');
            }
            return [true, $result];
        }
        try {
            return [true, json_encode($result, JSON_THROW_ON_ERROR)];
        } catch (\JsonException $e) {
            return failure('Runtime.MarshalError', 'the handler returned a value that cannot be encoded as JSON: ' . $e->getMessage());
        }
    } catch (\Throwable $e) {
        return failure(get_class($e), $e->getMessage(), frames($e));
    }
}
