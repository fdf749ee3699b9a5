//! The process's limit on open file descriptors. Each WebSocket holds one, and the usual soft limit of 1,024
//! would cap a node far below what its memory allows, so the service raises the soft limit to the hard one at
//! start.

/// Raises the soft limit on open descriptors to the hard limit; answers the limit in force afterwards.
pub fn raise_limit() -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the limit into the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            // SAFETY: setrlimit reads the struct it is given; raising the soft limit up to the hard one is
            // allowed to any process.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit = raised;
        }
        Ok(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let limit = super::raise_limit().unwrap();
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) }, 0);
        assert_eq!(current.rlim_cur, current.rlim_max);
        assert_eq!(limit, current.rlim_cur);
    }
}
