//! RTP ports: one even port per leg, from the configured range.

use std::collections::VecDeque;

pub struct PortPool {
    free: VecDeque<u16>,
}

impl PortPool {
    /// Even ports only (RTP convention).
    pub fn new((lo, hi): (u16, u16)) -> PortPool {
        PortPool {
            free: (lo..=hi).filter(|p| p % 2 == 0).collect(),
        }
    }

    pub fn take(&mut self) -> Option<u16> {
        self.free.pop_front()
    }

    /// Released ports go to the back, so a port is not reused while its
    /// old socket may still be closing.
    pub fn release(&mut self, port: u16) {
        if port != 0 {
            self.free.push_back(port);
        }
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_in_order_and_released_ones_last() {
        let mut pool = PortPool::new((20000, 20005));
        assert_eq!(pool.free(), 3);
        assert_eq!(pool.take(), Some(20000));
        pool.release(20000);
        assert_eq!(pool.take(), Some(20002));
        assert_eq!(pool.take(), Some(20004));
        assert_eq!(pool.take(), Some(20000));
        assert_eq!(pool.take(), None);
        pool.release(0);
        assert_eq!(pool.free(), 0, "port 0 is no port");
    }
}
