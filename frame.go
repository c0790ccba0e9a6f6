package wszero

import (
	"fmt"

	"github.com/wszero/wszero/internal/binding"
)

// checkSendOp refuses ops a server may not send.
func checkSendOp(op string) error {
	if err := binding.CheckSendOp(op); err != nil {
		return fmt.Errorf("wszero: %w", err)
	}
	return nil
}

// encodeMessage renders {"op": op, …params}. op comes first and wins over
// an "op" key in params.
func encodeMessage(op string, params any) ([]byte, error) {
	if p, ok := params.(Params); ok {
		params = map[string]any(p)
	}
	data, err := binding.EncodeMessage(op, params)
	if err != nil {
		return nil, fmt.Errorf("wszero: %w", err)
	}
	return data, nil
}

// prepare encodes a broadcast once and frames it once for all members.
func (s *Server) prepare(op string, params any) (*preparedFrame, []byte, error) {
	data, err := s.encode(op, params)
	if err != nil {
		return nil, nil, err
	}
	return newPreparedFrame(data), data, nil
}

// encode checks op and renders {"op": op, …params}, refusing a message
// that no client's send queue could hold.
func (s *Server) encode(op string, params any) ([]byte, error) {
	if err := checkSendOp(op); err != nil {
		return nil, err
	}
	data, err := encodeMessage(op, params)
	if err != nil {
		return nil, err
	}
	if len(data) > s.opts.queueBytes {
		return nil, s.tooBig(len(data))
	}
	return data, nil
}

// tooBig explains that a message of size bytes can never be sent.
func (s *Server) tooBig(size int) error {
	return fmt.Errorf("%w: it is %d bytes, and a client's send queue holds %d (wszero.WithSendQueue)", ErrTooBig, size, s.opts.queueBytes)
}

// preparedFrame is a text frame as it goes on the wire from a server
// (final, unmasked, uncompressed): a broadcast is framed once for everyone.
type preparedFrame struct {
	wire []byte
}

// payload returns the frame's payload: what follows its header.
func (pf *preparedFrame) payload() []byte {
	switch pf.wire[1] {
	case 126:
		return pf.wire[4:]
	case 127:
		return pf.wire[10:]
	}
	return pf.wire[2:]
}

// maxHeader is the longest header of a frame from a server.
const maxHeader = 10

// newPreparedFrame frames payload as one text frame.
func newPreparedFrame(payload []byte) *preparedFrame {
	wire := appendTextHeader(make([]byte, 0, maxHeader+len(payload)), len(payload))
	return &preparedFrame{wire: append(wire, payload...)}
}

// appendTextHeader appends the header of a final, unmasked text frame of
// n bytes.
func appendTextHeader(b []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n < 1<<16:
		return append(b, finText, 126, byte(n>>8), byte(n))
	}
	return append(b, finText, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
