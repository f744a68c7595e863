// The Common Grounds client library: typed HTTP calls (Api) and one live WebSocket for every class
// room (Live). It has no dependencies and runs in browsers, Node >= 20 and React Native.
export { Api } from "./http.js";
export type { ApiOptions, ClassQuery, FetchLike, FriendTarget, MessageQuery, TokenSource } from "./http.js";
export { Live, reconnectAfter } from "./live.js";
export type {
  DebugEvent, LiveOptions, LiveState, OnlineCount, PendingMessage, RoomHandlers, SubscribedInfo, Subscription,
  WebSocketConstructor, WebSocketLike,
} from "./live.js";
export { CGError } from "./errors.js";
export { MAX_CONTENT_CHARS, normalizeContent, validClientMsgId } from "./content.js";
export { parseFrame } from "./frames.js";
export type { ChangeFrame, ChangeType, ClientFrame, ParsedFrame, ServerFrame } from "./frames.js";
export { RoomState } from "./state.js";
export { memoryStorage } from "./storage.js";
export type { StorageAdapter } from "./storage.js";
export type * from "./types.js";
