-- Common Grounds schema, version 1.
--
-- Derived from the original design. Where this file departs from that design it says why, next
-- to the change:
--
-- * gen_random_uuid() is built into PostgreSQL 13+, so the uuid-ossp extension is not needed.
--   The original also called digest() from pgcrypto without creating that extension; the function
--   that used it (an unkeyed hash of user and class ids) is gone, see class_pseudonyms below.
-- * pg_trgm is created because class search (`q`) runs an indexed substring match over
--   subject, number and title.
-- * Indexes that merely repeat a UNIQUE constraint or the leading column of a primary key or
--   unique index are dropped: every write paid for them and no plan could prefer them.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- ============================================================================
-- Users
-- ============================================================================

-- The domains students may sign in from. The original hard-wired `@virginia\.edu` in a CHECK; the
-- allowed domain is configuration (ALLOWED_EMAIL_DOMAIN), so the database enforces it through a
-- foreign key from the address's domain to this table, which the server fills from its
-- configuration at start-up.
CREATE TABLE email_domains (
    domain text PRIMARY KEY CHECK (domain = lower(domain) AND domain ~ '^[a-z0-9-]+(\.[a-z0-9-]+)+$')
);
INSERT INTO email_domains (domain) VALUES ('virginia.edu');

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored lower-case: addresses are case-insensitive, and a UNIQUE over mixed case would let
    -- Abc@ and abc@ be two accounts.
    email          text NOT NULL UNIQUE
                   CHECK (email ~ '^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$'),
    email_domain   text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED
                   REFERENCES email_domains (domain),
    computing_id   text UNIQUE CHECK (computing_id = lower(computing_id)),
    -- HMAC-SHA256(pepper, E.164 number). The original stored a bcrypt hash, but a salted hash
    -- cannot be matched against a contact list: finding friends needs a deterministic keyed hash.
    -- The key (pepper) lives outside the database, so a stolen table does not give up the numbers
    -- by enumerating the small space of phone numbers. phone_pepper_version names the key.
    phone_hash           bytea UNIQUE,
    phone_pepper_version integer,
    email_verified boolean NOT NULL DEFAULT false,
    phone_verified boolean NOT NULL DEFAULT false,
    role           text NOT NULL DEFAULT 'student' CHECK (role IN ('student', 'moderator')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((phone_hash IS NULL) = (phone_pepper_version IS NULL)),
    CHECK (NOT phone_verified OR phone_hash IS NOT NULL)
);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ============================================================================
-- Sign-in
-- ============================================================================

-- A magic link is issued for an address, not a user: the account is created when the link is
-- redeemed, so asking for a link neither creates accounts for arbitrary addresses nor reveals
-- whether one exists. Only the SHA-256 of the token is stored.
CREATE TABLE magic_links (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email      text NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used       boolean NOT NULL DEFAULT false,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX magic_links_expires_at ON magic_links (expires_at);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Single-use WebSocket tickets for browsers, bound to the session that asked for them.
CREATE TABLE ws_tickets (
    ticket_hash bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used        boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ws_tickets_session_id ON ws_tickets (session_id);
CREATE INDEX ws_tickets_expires_at ON ws_tickets (expires_at);

-- A pending phone verification. The number is kept only as its keyed hash; the code as its
-- SHA-256, void after expires_at or after 5 wrong attempts.
CREATE TABLE phone_verifications (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    phone_hash     bytea NOT NULL,
    pepper_version integer NOT NULL,
    code_hash      bytea NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The keyed hashes of the phone numbers a user imported from their contacts (the original's
-- contact_imports kept them as an array per import, which cannot be indexed or joined).
CREATE TABLE user_contacts (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phone_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, phone_hash)
);
CREATE INDEX user_contacts_phone_hash ON user_contacts (phone_hash);

-- ============================================================================
-- Classes and enrollment
-- ============================================================================

CREATE TABLE classes (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subject              text NOT NULL,
    catalog_number       text NOT NULL,
    term                 text NOT NULL,
    title                text,
    description          text,
    sis_class_number     text,
    instructor           text,
    component            text,
    class_section        text,
    class_capacity       integer,
    enrollment_available integer,
    days                 text,
    start_time           text CHECK (start_time ~ '^[0-2][0-9][0-5][0-9]$'),
    end_time             text CHECK (end_time ~ '^[0-2][0-9][0-5][0-9]$'),
    location             text,
    last_synced_at       timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- NULLS NOT DISTINCT: two rows without an SIS number must not both claim the same class.
    UNIQUE NULLS NOT DISTINCT (subject, catalog_number, term, sis_class_number)
);
-- The original's (subject, catalog_number, term) index is the prefix of the UNIQUE index above
-- and is dropped. Listing pages by term in a stable order uses this one.
CREATE INDEX classes_term_order ON classes (term, subject, catalog_number, class_section, id);
CREATE INDEX classes_search_trgm ON classes
    USING gin ((subject || ' ' || catalog_number || ' ' || coalesce(title, '')) gin_trgm_ops);
CREATE TRIGGER classes_updated_at BEFORE UPDATE ON classes
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE user_classes (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    class_id    uuid NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, class_id)
);
-- The primary key serves lookups by user_id; the original's user_id index repeated it.
CREATE INDEX user_classes_class_id ON user_classes (class_id, user_id);

-- ============================================================================
-- Friends
-- ============================================================================

CREATE TYPE friendship_status AS ENUM ('PENDING', 'ACCEPTED', 'REJECTED', 'BLOCKED');

-- user_id_1 asked user_id_2. The original's UNIQUE(user_id_1, user_id_2) let A→B and B→A coexist,
-- two relationships for one pair; the unique index on the unordered pair allows exactly one.
-- Blocks are kept in user_blocks instead of a BLOCKED status: a block is one-sided and must
-- outlive the friendship it ends (the BLOCKED value stays in the type for compatibility).
CREATE TABLE friendships (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id_1  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_id_2  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status     friendship_status NOT NULL DEFAULT 'PENDING' CHECK (status <> 'BLOCKED'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    accepted_at timestamptz,
    CHECK (user_id_1 <> user_id_2)
);
CREATE UNIQUE INDEX friendships_pair ON friendships (LEAST(user_id_1, user_id_2), GREATEST(user_id_1, user_id_2));
CREATE INDEX friendships_user_id_1 ON friendships (user_id_1, status);
CREATE INDEX friendships_user_id_2 ON friendships (user_id_2, status);
CREATE TRIGGER friendships_updated_at BEFORE UPDATE ON friendships
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE user_blocks (
    blocker_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX user_blocks_blocked_id ON user_blocks (blocked_id);

-- ============================================================================
-- Anonymous class rooms
-- ============================================================================

-- A class's room: last_seq is the sequence number of its newest message. Publishing increments
-- it in the transaction that inserts the message, so the row lock orders commits and seq is
-- contiguous and in commit order. It lives apart from classes so that a message does not rewrite
-- the wide class row, and so that the SIS sync never waits on a busy room.
CREATE TABLE rooms (
    class_id uuid PRIMARY KEY REFERENCES classes (id) ON DELETE CASCADE,
    last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

-- Per-class pseudonyms. The original derived them as sha256(user_id || class_id): anyone who
-- knows both ids (ids appear in every API reply) can recompute it and unmask every author. Here
-- the pseudonym is random, created on first use, unique within the class and unrelated across
-- classes. The row outlives leaving the class, so re-joining keeps the pseudonym.
CREATE TABLE class_pseudonyms (
    class_id   uuid NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    anon_id    text NOT NULL CHECK (anon_id ~ '^Anon_[0-9a-f]{6}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (class_id, user_id),
    UNIQUE (class_id, anon_id)
);
CREATE INDEX class_pseudonyms_user_id ON class_pseudonyms (user_id);

-- Messages are never deleted: a hidden or deleted message stays as a tombstone that keeps its id
-- and seq, so every room stays contiguous. The original cascaded user deletion into messages,
-- which would punch holes in a room's sequence; here deleting a user erases the content, the
-- pseudonym and the user link of its messages (trigger below) and keeps the rest.
CREATE TABLE class_messages (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    class_id       uuid NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    seq            bigint NOT NULL CHECK (seq > 0),
    user_id        uuid REFERENCES users (id),
    anon_id        text,
    content        text CHECK (char_length(content) BETWEEN 1 AND 4000),
    parent_id      uuid REFERENCES class_messages (id),
    reply_count    integer NOT NULL DEFAULT 0,
    flag_count     integer NOT NULL DEFAULT 0,
    hidden         boolean NOT NULL DEFAULT false,
    hidden_at      timestamptz,
    client_msg_id  text CHECK (char_length(client_msg_id) BETWEEN 1 AND 128),
    deleted_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (class_id, seq),
    -- A publish retried with the same client_msg_id finds the first message instead of creating
    -- a second one.
    UNIQUE (class_id, user_id, client_msg_id),
    -- A live message has an author, a pseudonym and content; a tombstone of a deleted account
    -- has none of them.
    CHECK ((deleted_at IS NULL) = (user_id IS NOT NULL)),
    CHECK (deleted_at IS NOT NULL OR (anon_id IS NOT NULL AND content IS NOT NULL)),
    CHECK (deleted_at IS NULL OR (anon_id IS NULL AND content IS NULL AND client_msg_id IS NULL))
);
-- (class_id, seq) is unique and serves history in both directions; the original's
-- (class_id, created_at) index and its index on the pseudonym are dropped.
CREATE INDEX class_messages_parent_id ON class_messages (parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX class_messages_user_id ON class_messages (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX class_messages_flagged ON class_messages (flag_count DESC, created_at DESC) WHERE flag_count > 0;
CREATE TRIGGER class_messages_updated_at BEFORE UPDATE ON class_messages
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE FUNCTION tombstone_user_messages() RETURNS trigger AS $$
BEGIN
    UPDATE class_messages
       SET content = NULL, anon_id = NULL, user_id = NULL, client_msg_id = NULL,
           deleted_at = now()
     WHERE user_id = OLD.id;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER users_tombstone_messages BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tombstone_user_messages();

-- One flag per user per message.
CREATE TABLE message_flags (
    message_id uuid NOT NULL REFERENCES class_messages (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason     text CHECK (char_length(reason) <= 500),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id)
);

-- Every moderator action, and above all every reveal of an author, is written here. The
-- moderator's id survives the moderator's account only as long as the account exists.
CREATE TABLE moderation_audit (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    moderator_id uuid REFERENCES users (id) ON DELETE SET NULL,
    message_id   uuid NOT NULL REFERENCES class_messages (id) ON DELETE CASCADE,
    action       text NOT NULL CHECK (action IN ('reveal_author', 'hide', 'unhide', 'auto_hide')),
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_audit_message_id ON moderation_audit (message_id);

-- ============================================================================
-- The original's query functions, kept as SQL functions (and tested). get_user_friends returns
-- the friend's id in both branches (the original's CASE returned u.id twice, which was right only
-- by accident of the join) and the friendship's acceptance time.
-- ============================================================================

CREATE OR REPLACE FUNCTION get_common_classes(p_user_id_1 uuid, p_user_id_2 uuid)
RETURNS SETOF classes AS $$
    SELECT c.*
      FROM classes c
      JOIN user_classes uc1 ON uc1.class_id = c.id AND uc1.user_id = p_user_id_1
      JOIN user_classes uc2 ON uc2.class_id = c.id AND uc2.user_id = p_user_id_2
     ORDER BY c.term, c.subject, c.catalog_number, c.class_section, c.id;
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION get_user_friends(p_user_id uuid)
RETURNS TABLE (friend_id uuid, friend_email text, friend_computing_id text, since timestamptz) AS $$
    SELECT u.id, u.email, u.computing_id, coalesce(f.accepted_at, f.updated_at)
      FROM friendships f
      JOIN users u ON u.id = CASE WHEN f.user_id_1 = p_user_id THEN f.user_id_2 ELSE f.user_id_1 END
     WHERE (f.user_id_1 = p_user_id OR f.user_id_2 = p_user_id)
       AND f.status = 'ACCEPTED';
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION get_friends_in_class(p_user_id uuid, p_class_id uuid)
RETURNS TABLE (friend_id uuid, friend_email text, friend_computing_id text) AS $$
    SELECT f.friend_id, f.friend_email, f.friend_computing_id
      FROM get_user_friends(p_user_id) f
      JOIN user_classes uc ON uc.user_id = f.friend_id AND uc.class_id = p_class_id;
$$ LANGUAGE sql STABLE;
