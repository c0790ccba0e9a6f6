// Generated from internal/protocol by `go run ./js/build`: do not edit.
// The strings of wszero's wire protocol, the same as the server's.

// The ops the protocol itself uses.
export const OpConnect = "connect";
export const OpDisconnect = "disconnect";
export const OpError = "error";
export const OpReply = "_reply";
export const OpPing = "_ping";
export const OpPong = "_pong";
export const OpReload = "_reload";
export const OpEvalJS = "eval_js";
export const OpAway = "client_away";
export const OpBack = "client_back";
export const OpJoin = "group_join";
export const OpLeave = "group_leave";
export const OpSession = "_session";
export const OpResume = "_resume";
export const OpAck = "_ack";

// The keys the protocol adds to messages.
export const KeyOp = "op";
export const KeyRef = "_ref";
export const KeyResult = "result";
export const KeyMsg = "msg";
export const KeyFor = "for";
export const KeyEvery = "every";
export const KeyScript = "script";
export const KeyID = "id";
export const KeyKey = "key";
export const KeyResumed = "resumed";
export const KeyMissed = "missed";
export const KeyGot = "got";
export const KeySeen = "seen";
export const KeySent = "sent";
export const KeyWhy = "why";
export const KeyGroup = "group";

// The subprotocols a session client offers.
export const SubprotocolJSON = "wszero.json";
export const SubprotocolResume = "wszero.resume";

// CloseReconnecting is the close code of a connection dropped to open another.
export const CloseReconnecting = 4000;

// Acknowledge every AckEvery numbered messages, AckBytes of them, or AckAfterMillis after the first.
export const AckEvery = 256;
export const AckBytes = 524288;
export const AckAfterMillis = 1000;

// ReservedPrefix starts the ops and keys that belong to wszero.
export const ReservedPrefix = "_";
