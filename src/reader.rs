//! A bounds-checked big-endian cursor, for the binary protocols kwait reads
//! (Kafka, ZooKeeper's jute). Every read checks the bytes that are left;
//! nothing here panics or allocates from a count on the wire.

/// A bounds-checked cursor over a response body.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub type Decoded<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Decoded<&'a [u8]> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: needs {n} more bytes at offset {}, has {}",
                self.pos,
                self.remaining()
            ));
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn i8(&mut self) -> Decoded<i8> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Decoded<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Decoded<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Decoded<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub fn skip(&mut self, n: usize) -> Decoded<()> {
        self.bytes(n).map(|_| ())
    }

    pub fn uvarint(&mut self) -> Decoded<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.array::<1>()?[0];
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 5 bytes".into())
    }

    /// A string, compact (flexible versions) or classic; `None` for null.
    pub fn string(&mut self, compact: bool) -> Decoded<Option<String>> {
        let len = if compact {
            match self.uvarint()? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i16()? {
                -1 => return Ok(None),
                n if n < 0 => return Err(format!("string length {n}")),
                n => n as usize,
            }
        };
        let bytes = self.bytes(len)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// An array's element count, compact or classic; null reads as empty.
    /// `min_size` is the fewest bytes one element can take, so a count the
    /// rest of the frame cannot hold is rejected before any loop runs.
    pub fn array_len(&mut self, compact: bool, min_size: usize) -> Decoded<usize> {
        let count = if compact {
            match self.uvarint()? {
                0 => 0,
                n => (n - 1) as usize,
            }
        } else {
            match self.i32()? {
                -1 => 0,
                n if n < 0 => return Err(format!("array length {n}")),
                n => n as usize,
            }
        };
        if count.saturating_mul(min_size.max(1)) > self.remaining() {
            return Err(format!(
                "array of {count} elements does not fit in the {} bytes left",
                self.remaining()
            ));
        }
        Ok(count)
    }

    /// Skips a tagged-field section (flexible versions).
    pub fn tags(&mut self) -> Decoded<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }

    /// Skips an array of int32 (replica lists).
    pub fn skip_i32_array(&mut self, compact: bool) -> Decoded<()> {
        let n = self.array_len(compact, 4)?;
        self.skip(n * 4)
    }
}
