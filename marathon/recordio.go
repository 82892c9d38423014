package marathon

// RecordIO, the framing of the Mesos operator API's SUBSCRIBE stream:
// record = record-size LF record-data, where record-size is the decimal
// length of record-data in bytes and nothing follows the data
// (apache/mesos docs/recordio.md; encoder
// 3rdparty/stout/include/stout/recordio.hpp, size + "\n" + record).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// maxRecordDigits bounds a record length's digits: 20 is the widest
// uint64. dcos-net gives up after 12 bytes without a newline
// (dcos_net_mesos_listener.erl stream_decode/3).
const maxRecordDigits = 20

// RecordError locates a framing fault of a RecordIO stream: the record
// length that was bad, too large or cut short. Any of them ends the stream:
// framing cannot be resynchronised.
type RecordError struct {
	// Record is the 0-based index of the record in the stream.
	Record int
	// Length is the announced length (0 when it did not parse).
	Length uint64
	// Reason says what was wrong.
	Reason string
}

func (e *RecordError) Error() string {
	if e.Length > 0 {
		return fmt.Sprintf("recordio record %d (length %d): %s", e.Record, e.Length, e.Reason)
	}
	return fmt.Sprintf("recordio record %d: %s", e.Record, e.Reason)
}

// keptRecordBuffer is the largest record buffer kept for the next record.
const keptRecordBuffer = 1 << 20

// recordReader splits a RecordIO stream into records. It never allocates
// what a length announces before the bytes have arrived: the buffer grows
// with the data actually read, so a lying length costs no memory.
type recordReader struct {
	r    *bufio.Reader
	max  uint64 // the largest record accepted
	n    int    // records started so far
	buf  bytes.Buffer
	body recordBody // the current record's reader
	err  error      // the fault that ended the stream inside a record
}

func newRecordReader(r io.Reader, max int) *recordReader {
	rr := &recordReader{r: bufio.NewReaderSize(r, 64<<10), max: uint64(max)}
	rr.body.rr = rr
	return rr
}

// Next returns the next record, valid until the following call. It
// returns io.EOF at a clean end between records, a *RecordError for a bad,
// oversized or cut-short record, and the transport's error otherwise.
func (rr *recordReader) Next() ([]byte, error) {
	body, err := rr.NextReader()
	if err != nil {
		return nil, err
	}
	if rr.buf.Cap() > keptRecordBuffer {
		// A SUBSCRIBED snapshot read whole must not outlive its record
		// (the events after it are small).
		rr.buf = bytes.Buffer{}
	}
	rr.buf.Reset()
	if _, err := io.Copy(&rr.buf, body); err != nil {
		return nil, err
	}
	return rr.buf.Bytes(), nil
}

// NextReader returns a reader of the next record's data, for reading a
// large record without holding it whole: valid until the following call,
// which skips what was left unread. Its errors are Next's; a record cut
// short fails its reader's Read with a *RecordError.
func (rr *recordReader) NextReader() (io.Reader, error) {
	if rr.err != nil {
		return nil, rr.err
	}
	if rr.body.left > 0 {
		if _, err := io.Copy(io.Discard, &rr.body); err != nil {
			return nil, err
		}
	}
	size, err := rr.length()
	if err != nil {
		return nil, err
	}
	if size > rr.max {
		return nil, rr.fault(size, fmt.Sprintf("larger than the %d bytes accepted", rr.max))
	}
	rr.body.size, rr.body.left = size, size
	rr.n++
	return &rr.body, nil
}

// recordBody reads the data of the current record.
type recordBody struct {
	rr         *recordReader
	size, left uint64
}

func (b *recordBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if uint64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rr.r.Read(p)
	b.left -= uint64(n)
	switch {
	case err == nil || b.left == 0:
		return n, nil
	case errors.Is(err, io.EOF):
		err = &RecordError{Record: b.rr.n - 1, Length: b.size, Reason: fmt.Sprintf("stream ended after %d bytes", b.size-b.left)}
	}
	b.left, b.rr.err = 0, err
	return n, err
}

// failed reports whether the stream ended inside the current record: the
// next call of Next or NextReader returns why.
func (rr *recordReader) failed() bool { return rr.err != nil }

// length reads a record length and its newline.
func (rr *recordReader) length() (uint64, error) {
	var size uint64
	for digits := 0; ; digits++ {
		b, err := rr.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if digits == 0 {
					return 0, io.EOF
				}
				return 0, rr.fault(0, "stream ended inside a record length")
			}
			return 0, err
		}
		switch {
		case b == '\n' && digits > 0:
			return size, nil
		case b < '0' || b > '9':
			return 0, rr.fault(0, fmt.Sprintf("byte %q in a record length", b))
		case digits >= maxRecordDigits:
			return 0, rr.fault(0, fmt.Sprintf("record length longer than %d digits", maxRecordDigits))
		}
		d := uint64(b - '0')
		if size > (math.MaxUint64-d)/10 {
			return 0, rr.fault(0, "record length overflows")
		}
		size = size*10 + d
	}
}

func (rr *recordReader) fault(size uint64, reason string) *RecordError {
	return &RecordError{Record: rr.n, Length: size, Reason: reason}
}
