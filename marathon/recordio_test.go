package marathon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// appendRecord frames data as one RecordIO record, as Mesos does
// (stout recordio.hpp: stringify(size) + "\n" + record).
func appendRecord(dst, data []byte) []byte {
	dst = fmt.Appendf(dst, "%d\n", len(data))
	return append(dst, data...)
}

// oneByteReader hands out one byte per Read, as a proxy that re-chunks
// the stream might.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestRecordReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string // "" for a clean io.EOF
	}{
		{name: "empty stream", in: ""},
		{name: "two records", in: "2\n{}20\n{\"type\":\"HEARTBEAT\"}", want: []string{"{}", `{"type":"HEARTBEAT"}`}},
		{name: "zero length record", in: "0\n1\nx", want: []string{"", "x"}},
		{name: "multibyte counts bytes", in: "4\n\"é\"", want: []string{`"é"`}},
		{name: "length lies long", in: "10\n{}", wantErr: "stream ended after 2 bytes"},
		{name: "length lies short", in: "1\n{}", want: []string{"{"}, wantErr: "byte '}' in a record length"},
		{name: "cut inside length", in: "2\n{}1", want: []string{"{}"}, wantErr: "stream ended inside a record length"},
		{name: "no digits", in: "\n{}", wantErr: "byte '\\n' in a record length"},
		{name: "sign", in: "-1\n", wantErr: "byte '-' in a record length"},
		{name: "too many digits", in: strings.Repeat("0", 21) + "\n", wantErr: "longer than 20 digits"},
		{name: "overflow", in: "99999999999999999999\n", wantErr: "overflows"},
		{name: "oversized", in: "1025\n", wantErr: "larger than the 1024 bytes accepted"},
		{name: "huge claim", in: "18446744073709551615\n", wantErr: "larger than the 1024 bytes accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunked := range []bool{false, true} {
				var r io.Reader = strings.NewReader(tt.in)
				if chunked {
					r = oneByteReader{r}
				}
				rr := newRecordReader(r, 1024)
				var got []string
				var err error
				for {
					var rec []byte
					if rec, err = rr.Next(); err != nil {
						break
					}
					got = append(got, string(rec))
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("records of %q = %q, want %q", tt.in, got, tt.want)
				}
				switch {
				case tt.wantErr == "" && err != io.EOF:
					t.Errorf("end of %q = %v, want io.EOF", tt.in, err)
				case tt.wantErr != "":
					var re *RecordError
					if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.wantErr) {
						t.Errorf("end of %q = %v, want a RecordError with %q", tt.in, err, tt.wantErr)
					}
				}
			}
		})
	}
}

// TestRecordReaderDoesNotTrustLengths: a record that announces 1 GiB
// and sends 3 bytes allocates about what arrived, not what was announced.
func TestRecordReaderDoesNotTrustLengths(t *testing.T) {
	allocs := testing.AllocsPerRun(10, func() {
		rr := newRecordReader(strings.NewReader("1073741824\nabc"), 2<<30)
		if _, err := rr.Next(); err == nil {
			t.Fatal("cut record accepted")
		}
	})
	if allocs > 20 {
		t.Errorf("%v allocations for a cut record", allocs)
	}
	var rr *recordReader
	testing.AllocsPerRun(1, func() { rr = newRecordReader(strings.NewReader("1073741824\nabc"), 2<<30); rr.Next() })
	if c := rr.buf.Cap(); c > 1<<20 {
		t.Errorf("buffer of %d bytes for a 3-byte record", c)
	}
}

func FuzzRecordReader(f *testing.F) {
	for _, s := range []string{"", "2\n{}", "0\n", "10\n{}", "1\n{}", "99999999999999999999\n", "3\nabc4\nabcd"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		records, err := readRecords(in)
		var re *RecordError
		if err != io.EOF && !errors.As(err, &re) {
			t.Fatalf("error %v is neither io.EOF nor a RecordError", err)
		}
		var framed []byte
		for _, rec := range records {
			if len(rec) > 1<<16 {
				t.Fatalf("record of %d bytes over the limit", len(rec))
			}
			framed = appendRecord(framed, rec)
		}
		// Reframed (lengths without leading zeros), the records read back
		// the same and end cleanly.
		again, err := readRecords(framed)
		if err != io.EOF || fmt.Sprint(again) != fmt.Sprint(records) {
			t.Fatalf("reframed records = %q, %v; want %q, EOF", again, err, records)
		}
	})
}

// readRecords reads every record of in, up to the error that ends them.
func readRecords(in []byte) ([][]byte, error) {
	rr := newRecordReader(bytes.NewReader(in), 1<<16)
	var out [][]byte
	for {
		rec, err := rr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(rec))
	}
}
