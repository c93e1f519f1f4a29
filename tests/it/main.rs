//! Integration tests of the real `host` binary and library, one module per area.

mod apps;
mod bootstrap;
mod cli;
mod docs;
mod errors;
mod extensions;
mod http;
mod invoke;
mod lambda;
mod layers;
mod mariadb;
mod mysql;
mod mysql_auth;
mod net;
mod php;
mod snapshot;
mod util;
mod vendor;
mod web;
