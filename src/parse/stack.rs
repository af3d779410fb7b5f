//! A stack whose first few entries live inline.
//!
//! The parser keeps two stacks per reply (open tool tags in pre-flight
//! step 3, open elements in the builder). Replies rarely nest more than a
//! couple of tags, so keeping the first entries inline saves an
//! allocation per reply; deeper entries spill into a `Vec`.

use std::mem;

pub(crate) struct Stack<T, const N: usize> {
    inline: [T; N],
    /// Entries in all, inline ones first.
    len: usize,
    spill: Vec<T>,
}

impl<T: Default, const N: usize> Stack<T, N> {
    pub(crate) fn new() -> Self {
        Stack {
            inline: std::array::from_fn(|_| T::default()),
            len: 0,
            spill: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, value: T) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = value,
            None => self.spill.push(value),
        }
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        self.len = self.len.checked_sub(1)?;
        match self.inline.get_mut(self.len) {
            Some(slot) => Some(mem::take(slot)),
            None => self.spill.pop(),
        }
    }

    pub(crate) fn last(&self) -> Option<&T> {
        let top = self.len.checked_sub(1)?;
        match self.inline.get(top) {
            Some(slot) => Some(slot),
            None => self.spill.last(),
        }
    }

    /// Bottom to top.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        let inline = self.inline.get(..self.len.min(N)).unwrap_or_default();
        inline.iter().chain(self.spill.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_vec_past_the_inline_entries() {
        let mut stack: Stack<String, 2> = Stack::new();
        let mut vec: Vec<String> = Vec::new();
        let ops = [1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0];
        for (i, push) in ops.into_iter().enumerate() {
            if push == 1 {
                stack.push(i.to_string());
                vec.push(i.to_string());
            } else {
                assert_eq!(stack.pop(), vec.pop());
            }
            assert_eq!(stack.len(), vec.len());
            assert_eq!(stack.last(), vec.last());
            assert!(stack.iter().eq(vec.iter()));
            assert!(stack.iter().rev().eq(vec.iter().rev()));
        }
    }
}
