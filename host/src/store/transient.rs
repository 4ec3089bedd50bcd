//! Which database errors are transient: the same statement may succeed when
//! tried again (a connection was reset or killed, the pool was busy, two
//! transactions collided). The runtime retries those with backoff and never
//! records them as a task's or an execution's failure.

use super::StoreError;

impl StoreError {
    /// Whether trying the same work again may succeed: a lost or refused
    /// connection, a pool timeout, a serialization failure or deadlock, or
    /// a busy SQLite file. A closed pool (the runner shut down) is not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Query { source, .. } => is_transient(source),
            _ => false,
        }
    }

    /// Whether the database aborted the transaction because it collided
    /// with another (a deadlock victim or a serialization failure): the
    /// whole transaction may be tried again at once, from its start.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Query {
                source: sqlx::Error::Database(error),
                ..
            } => error
                .code()
                .is_some_and(|code| matches!(&*code, "40001" | "40P01")),
            _ => false,
        }
    }
}

fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes worth another try.
fn transient_code(code: &str) -> bool {
    // PostgreSQL: connection exceptions (class 08), serialization failure,
    // deadlock, admin/crash shutdown and "cannot connect now" (a killed
    // backend or a restarting server), too many connections.
    code.starts_with("08")
        || matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300")
        // SQLite: SQLITE_BUSY and SQLITE_LOCKED with their extended codes.
        || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::transient_code;

    #[test]
    fn codes() {
        for code in [
            "08006", "08003", "40001", "40P01", "57P01", "53300", "5", "517", "6",
        ] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "19", "2067", "1"] {
            assert!(!transient_code(code), "{code}");
        }
    }
}
