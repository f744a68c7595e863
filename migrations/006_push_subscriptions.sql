-- Common Grounds schema, version 6: Web Push subscriptions.
--
-- A subscription is a browser's PushSubscription (the Push API): the push service's URL for that
-- browser and the keys that encrypt what is sent to it. It belongs to the session that
-- registered it and ends with it: signing out of a browser (or the session expiring, or the
-- account being deleted) stops that browser's pushes, so a shared computer does not go on
-- showing the previous student's replies. An endpoint is stored once: a browser has one
-- subscription per server, and the account signed in last holds it.

CREATE TABLE push_subscriptions (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    endpoint   text NOT NULL UNIQUE CHECK (length(endpoint) <= 2048),
    p256dh     bytea NOT NULL CHECK (length(p256dh) = 65),
    auth       bytea NOT NULL CHECK (length(auth) = 16),
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user_id ON push_subscriptions (user_id, created_at);
CREATE INDEX push_subscriptions_session_id ON push_subscriptions (session_id);
