//! The Redis server behind the `wasi:keyvalue` imports: one connection per vault,
//! opened on first use and again after it breaks, every call bounded by a timeout.

use std::time::Duration;

use redis::{Connection, RedisError, RedisResult};

/// Connection settings of a shared store's server.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`.
    pub url: String,
    /// How long connecting, and each request, may take.
    pub timeout: Duration,
}

/// The default of [`RedisConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis server and this vault's connection to it.
pub struct Server {
    client: redis::Client,
    timeout: Duration,
    connection: Option<Connection>,
    /// `host:port/db`, for errors (never the password).
    address: String,
}

impl Server {
    /// The server at `config.url`; nothing is connected yet. `Err` if the URL is malformed.
    pub fn new(config: &RedisConfig) -> RedisResult<Server> {
        let client = redis::Client::open(config.url.as_str())?;
        let info = client.get_connection_info();
        let address = format!("{}/{}", info.addr(), info.redis_settings().db());
        Ok(Server {
            client,
            timeout: config.timeout,
            connection: None,
            address,
        })
    }

    /// Runs `request` on the connection (connecting first if there is none). A
    /// failure is described with the server's address; one that leaves the connection
    /// in doubt (I/O, timeout, dropped) closes it, so the next call reconnects.
    pub fn run<T>(
        &mut self,
        request: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, String> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => {
                let connection = self.connect().map_err(|e| self.describe(&e))?;
                self.connection.insert(connection)
            }
        };
        match request(connection) {
            Ok(value) => Ok(value),
            Err(error) => {
                if error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_dropped()
                    || error.is_unrecoverable_error()
                {
                    self.connection = None;
                }
                Err(self.describe(&error))
            }
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let connection = self.client.get_connection_with_timeout(self.timeout)?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        Ok(connection)
    }

    fn describe(&self, error: &RedisError) -> String {
        let what = if error.is_timeout() {
            format!("timed out after {:?}", self.timeout)
        } else if error.is_connection_refusal() {
            "connection refused".to_owned()
        } else {
            "failed".to_owned()
        };
        format!("redis at {} {what}: {error}", self.address)
    }
}
