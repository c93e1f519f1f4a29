//! The guest-environment policy: what a guest sees of the host's environment, in each mode.
//!
//! | mode | the guest sees |
//! | --- | --- |
//! | `host run` | Lambda's standard variables, the PHP runtime's, `--env`; nothing of the host's |
//! | `host bootstrap` | the runtime's environment minus [`HIDDEN`] (the credentials pass with `LAMP_GUEST_CREDENTIALS=1`) and `LAMP_*`, then Lambda's standard variables, the PHP runtime's and, per invocation, `_X_AMZN_TRACE_ID` |
//! | `host php` | `TMPDIR=/tmp` and `--env`; nothing of the host's |
//!
//! Why they differ: on Lambda, the runtime's environment *is* the function's configuration
//! (the variables set on the function arrive there), so a guest must see it, as a handler on
//! Lambda would. Only what belongs to the runtime is held back: the Runtime API's address,
//! the host process's own plumbing, and the function role's credentials. A guest can use
//! credentials only on a network its policy opens ([`super::net`]), and most handlers never
//! call AWS, so they are given on purpose: `LAMP_GUEST_CREDENTIALS=1` on the function passes
//! [`CREDENTIALS`] (what the AWS SDKs read); with it, allow the endpoints too
//! (`LAMP_ALLOW_OUTBOUND=*.amazonaws.com:443`). Locally, the host's environment is a
//! developer's shell, full of things that have nothing to do with the function, so nothing of
//! it passes unless given with `--env`; the same goes for the PHP CLI.

/// Variables of the bootstrap's environment never passed to guests: credentials, the Runtime
/// API's address, and the host's own plumbing. `LAMP_*` (our own settings) are held back too.
pub const HIDDEN: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "PATH",
    "LD_LIBRARY_PATH",
    "HOME",
    "PWD",
    "SHLVL",
    "_",
];

/// The function role's credentials, as Lambda sets them for the runtime.
pub const CREDENTIALS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The setting that passes [`CREDENTIALS`] to guests in Lambda mode.
pub const CREDENTIALS_SETTING: &str = "LAMP_GUEST_CREDENTIALS";

/// Which policy applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `host run` (and the tests): nothing of the host.
    Local,
    /// `host bootstrap`: the function's configuration, as Lambda gives it.
    Lambda,
    /// `host php`: nothing of the host.
    PhpCli,
}

/// The guest's environment, in order: what passes of `host` (the host's environment), then
/// `standard` (variables the host sets: Lambda's, the PHP runtime's; they win over the host's
/// of the same name), then `given` (`--env`, in the order given).
pub fn guest_env(
    mode: Mode,
    host: impl IntoIterator<Item = (String, String)>,
    standard: Vec<(String, String)>,
    given: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = match mode {
        Mode::Lambda => {
            let host: Vec<(String, String)> = host.into_iter().collect();
            let credentials = host
                .iter()
                .any(|(k, v)| k == CREDENTIALS_SETTING && v.trim() == "1");
            host.into_iter()
                .filter(|(k, _)| {
                    let given_on_purpose = credentials && CREDENTIALS.contains(&k.as_str());
                    given_on_purpose || (!HIDDEN.contains(&k.as_str()) && !k.starts_with("LAMP_"))
                })
                .filter(|(k, _)| !standard.iter().any(|(s, _)| s == k))
                .collect()
        }
        Mode::Local | Mode::PhpCli => Vec::new(),
    };
    env.extend(standard);
    env.extend(given);
    env
}

/// The variables of `host php`'s guest besides `--env`: PHP finds its temporary directory.
pub fn php_cli_standard() -> Vec<(String, String)> {
    vec![("TMPDIR".into(), "/tmp".into())]
}

/// Parses `NAME=VALUE` pairs as given to `--env` (`host run` and `host php`).
pub fn parse_pairs(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("`--env {pair}`: give the variable as NAME=VALUE"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(env: &[(String, String)]) -> Vec<&str> {
        env.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The policy of the table above, mode by mode, from one host environment.
    #[test]
    fn each_mode_sees_what_the_policy_says() {
        let host = pairs(&[
            ("FUNCTION_SETTING", "from the function's configuration"),
            ("AWS_ACCESS_KEY_ID", "AKIA..."),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("LAMP_TIMEOUT", "5"),
            ("PATH", "/usr/bin"),
            ("AWS_LAMBDA_FUNCTION_NAME", "the host's value"),
        ]);
        let standard = pairs(&[("AWS_LAMBDA_FUNCTION_NAME", "fn"), ("TZ", ":UTC")]);
        let given = pairs(&[("STAGE", "dev")]);

        let local = guest_env(Mode::Local, host.clone(), standard.clone(), given.clone());
        assert_eq!(names(&local), ["AWS_LAMBDA_FUNCTION_NAME", "TZ", "STAGE"]);

        let lambda = guest_env(Mode::Lambda, host.clone(), standard.clone(), Vec::new());
        assert_eq!(
            lambda,
            pairs(&[
                ("FUNCTION_SETTING", "from the function's configuration"),
                ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
                ("TZ", ":UTC"),
            ])
        );

        let mut with_credentials = host.clone();
        with_credentials.push((CREDENTIALS_SETTING.into(), "1".into()));
        let lambda = guest_env(Mode::Lambda, with_credentials, standard.clone(), Vec::new());
        assert_eq!(
            names(&lambda),
            [
                "FUNCTION_SETTING",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_LAMBDA_FUNCTION_NAME",
                "TZ"
            ]
        );

        let cli = guest_env(Mode::PhpCli, host, php_cli_standard(), given);
        assert_eq!(cli, pairs(&[("TMPDIR", "/tmp"), ("STAGE", "dev")]));
    }

    #[test]
    fn env_pairs_need_a_name_and_an_equals_sign() {
        assert_eq!(
            parse_pairs(&["A=b=c".into(), "E=".into()]).unwrap(),
            pairs(&[("A", "b=c"), ("E", "")])
        );
        for bad in ["NOEQUALS", "=value"] {
            let err = parse_pairs(&[bad.into()]).unwrap_err().to_string();
            assert!(err.contains("NAME=VALUE"), "{err}");
        }
    }
}
