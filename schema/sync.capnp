@0xa5c5036d63a35c65;
# The client RPC: how devices and programs talk to an AutoSync node.
#
# The model is capability-based. A connection's bootstrap capability is a `Gateway`; the
# only thing it can do is `login` with a bearer token (a JWT). A successful login returns a
# `Session`: a capability bound to one user, which ends when the server stops accepting the
# token (a minute, the clock leeway, after its `exp`). Holding a Session is the authority
# to act on that user's files and nothing else: there is no user id in any Session method,
# so one user can never name another's files.
#
# Content travels as chunks. A client cuts a file with content-defined chunking, names
# each chunk by its SHA-256, asks which of them the server lacks (`missingChunks`), uploads
# only those (`putChunk`, many in flight at once), then commits the file as the ordered
# list of its chunks. Downloading is the reverse: `stat` gives the chunk list, `getChunk`
# fetches each (again many in flight), the client checks every hash. A file is never one
# message, so neither side ever holds a large file in memory whole, and an interrupted
# upload resumes by asking again which chunks are missing.
#
# Failures are results, not exceptions: every method's results carry `failure`, null on
# success. Its `kind` says what the caller should do next (see Failure). A Cap'n Proto
# exception means the connection or the server failed, not the request: reconnect and
# retry with the same operation id.
#
# Exactly once: every method that changes the namespace takes an `operationId` chosen by
# the client (unique per change, e.g. 16 random bytes in hex). A retry with the same id,
# after a timeout or a reconnect, returns the original result and changes nothing again.
#
# Revisions: a file's revision is the sequence number of the event that wrote it; it only
# grows. `commit` names the revision it was based on (0: the file must not exist yet), and
# is refused as a conflict if that is not the current one.
#
# Limits: a message may be at most 8 MiB (a chunk is at most 4 MiB); a connection may have
# at most 256 calls in flight; each user has a rate limit. Beyond them the call fails with
# `tooLarge`, `overloaded` or `rateLimited` and nothing changes.
#
# Compatibility: fields and methods are only ever added, never renumbered or retyped.

$import "/capnp/c++.capnp".namespace("autosync::schema::rpc");

const protocolVersion :UInt16 = 1;

struct Failure {
  kind @0 :Kind;
  enum Kind {
    invalid @0;          # malformed request or bad path; retrying it unchanged fails again
    tooLarge @1;         # a size limit was exceeded
    notFound @2;         # the path (or revision, or chunk) does not exist
    conflict @3;         # stale revision or the path is taken; see `current`
    quotaExceeded @4;    # the user's storage quota would be exceeded
    overloaded @5;       # the server is busy; back off and retry
    unavailable @6;      # storage failed or the server is stopping; retry later
    corruption @7;       # stored data failed a check; tell the operator
    internal @8;         # a bug in the server
    unauthenticated @9;  # no valid token (missing, expired, forged): get a new one
    forbidden @10;       # the token is valid but does not allow this
    rateLimited @11;     # too many requests for this user; retry after `retryAfterMs`
    missingChunks @12;   # a commit names chunks the server lacks; see `missingChunks`
    staleCursor @13;     # the cursor names a point this server's history does not hold
                         # (past its newest change, or another event there since a
                         # restore from a backup): list again for a fresh cursor
  }
  message @1 :Text;          # for people: what failed and what to do
  retryAfterMs @2 :UInt32;   # rateLimited, overloaded: wait at least this long (the SDK
                             # waits at most a minute, whatever this says)
  current @3 :Entry;         # conflict: what is at the path now (may be null)
  missingChunks @4 :List(Data);  # missingChunks: their hashes
}

struct ChunkRef {
  hash @0 :Data;    # SHA-256 of the chunk's bytes, 32 bytes
  size @1 :UInt32;
}

struct Entry {
  # A file or folder as it is (or was, for point-in-time lists).
  id @0 :UInt64;         # stable across moves and renames
  path @1 :Text;         # absolute, e.g. "/docs/report.pdf"; "/" is the root
  folder @2 :Bool;
  revision @3 :UInt64;   # files: the current revision; folders: when created
  size @4 :UInt64;       # files: bytes
  hash @5 :Data;         # files: SHA-256 of the whole content
  mtimeUs @6 :Int64;     # files: modification time the client reported, µs since 1970
  deviceId @7 :Text;     # files: the device that wrote the current revision
  chunks @8 :List(ChunkRef);  # files, when asked for (stat, commit): content in order
}

struct Version {
  # One revision of a file, as history lists them (oldest first).
  revision @0 :UInt64;
  deleted @1 :Bool;      # this revision deleted the file
  path @2 :Text;         # where the file was then (history follows renames)
  size @3 :UInt64;
  hash @4 :Data;
  mtimeUs @5 :Int64;
  deviceId @6 :Text;
  timestampUs @7 :Int64; # when the server accepted it
}

struct Change {
  # One change to the tree, as the change feed and subscriptions deliver it, in order.
  kind @0 :Kind;
  enum Kind {
    committed @0;      # a file was written (new or new revision); `entry` is it
    deleted @1;        # `path` (a file, or a folder with everything below) was deleted
    moved @2;          # `fromPath` is now `path` (with everything below a folder)
    folderCreated @3;
    restored @4;       # an older revision (or a deleted file) is current again; `entry`
    quotaChanged @5;
  }
  seq @1 :UInt64;      # the cursor after this change
  path @2 :Text;
  fromPath @3 :Text;
  folder @4 :Bool;
  entry @5 :Entry;     # committed, restored: the file with its chunks
  deviceId @6 :Text;   # who made the change, so a device can skip its own
  timestampUs @7 :Int64;
}

interface Gateway {
  login @0 (token :Text, deviceId :Text, protocolVersion :UInt16)
       -> (session :Session, user :Text, expiresAtS :Int64, failure :Failure);
  # `deviceId` names the device in the events it writes: 1 to 64 bytes of UTF-8 text
  # without control characters (else `invalid`).
  # Fails `unauthenticated` (the message says why: expired, bad signature, ...).
  # `expiresAtS` is the token's `exp`. The server accepts a token up to a minute past it
  # (clocks differ), and the session acts exactly as long: then every call fails
  # `unauthenticated`, as a new login with the same token would.
}

interface Session {
  missingChunks @0 (hashes :List(Data)) -> (missing :List(UInt32), failure :Failure);
  # The indexes (into `hashes`) of the chunks this user's store lacks. At most 65,536 hashes.

  putChunk @1 (hash :Data, data :Data) -> (stored :Bool, failure :Failure);
  # Stores a chunk once its bytes hash to `hash` (else `invalid`, nothing stored). `stored`
  # is false when the user had it already. Durable (fsynced) before the reply.

  getChunk @2 (hash :Data) -> (data :Data, failure :Failure);

  commit @3 (path :Text, baseRevision :UInt64, size :UInt64, hash :Data, mtimeUs :Int64,
             chunks :List(ChunkRef), operationId :Text)
         -> (entry :Entry, wasRetry :Bool, failure :Failure);
  # Writes a new revision of the file at `path` (missing folders are created). Durable
  # before the reply.

  stat @4 (path :Text) -> (entry :Entry, failure :Failure);
  # With chunks, for files.

  list @5 (path :Text, recursive :Bool, atSeq :UInt64, atTimeUs :Int64, after :Text,
           pageBytesMax :UInt32)
       -> (entries :List(Entry), seq :UInt64, failure :Failure, seqHash :Data, more :Bool);
  # The folder's children (everything below it when `recursive`), by path, without chunks.
  # As of sequence number `atSeq` or time `atTimeUs` when one of them is set (a
  # point-in-time view), else now. `seq` is the point listed, a cursor for `changes`, and
  # `seqHash` the hash of the event there (empty for 0), to pass with it as `cursorHash`.
  # Paging: a caller that sets `pageBytesMax` (at most 4 MiB is used) gets entries up to
  # about that many bytes, and `more` when others follow: it asks again with `atSeq` set
  # to the `seq` answered and `after` the last path it got, for the entries after it at
  # the same point. Without `pageBytesMax` the answer is whole, and a listing larger than
  # a message may be (8 MiB) fails.

  delete @6 (path :Text, baseRevision :UInt64, operationId :Text) -> (seq :UInt64, failure :Failure);
  # A file, or a folder with everything below. Deleted files stay restorable until retention.
  # `baseRevision` 0 deletes whatever is there; else, for a file, it must be its current
  # revision, and for a folder it is the cursor (seq) the caller's view of it is as of:
  # should anything below have been written, created or moved in since, the delete is a
  # conflict naming that entry, and nothing is deleted.

  move @7 (from :Text, to :Text, operationId :Text) -> (seq :UInt64, failure :Failure);

  createFolder @8 (path :Text, operationId :Text) -> (seq :UInt64, failure :Failure);

  history @9 (path :Text) -> (versions :List(Version), failure :Failure);

  restore @10 (path :Text, revision :UInt64, operationId :Text) -> (entry :Entry, failure :Failure);

  undelete @11 (path :Text, operationId :Text) -> (entry :Entry, failure :Failure);

  changes @12 (cursor :UInt64, limit :UInt32, cursorHash :Data)
          -> (changes :List(Change), cursor :UInt64, more :Bool, failure :Failure,
              cursorHash :Data);
  # Changes after `cursor` (0: from the beginning), at most `limit` (at most 10,000). A
  # cursor is 0 or a `seq` this user has reached (as `list`, `changes` and `Change.seq` give
  # them); one greater than the user's newest seq fails `invalid`: list again to get a
  # fresh cursor. The answer's `cursorHash` is the hash of the event at its `cursor` (empty
  # for 0); a caller that sends it back with that cursor is told `invalid` should the event
  # there be another one now (the journal was restored from a backup and went on
  # differently): its view is not of this history, and it must list again.

  subscribe @13 (listener :ChangeListener, cursor :UInt64)
            -> (subscription :Subscription, failure :Failure);
  # From now on `listener` receives every change after `cursor`, in order (calls on one
  # capability arrive in the order sent; up to a page of them may be in flight). A cursor
  # greater than the user's newest seq fails `invalid`, as for `changes`. The
  # subscription ends when `subscription` is dropped or the listener fails; when the
  # server ends it (the session ended: its token is no longer accepted; the listener fell
  # 10,000 changes behind) the listener's `ended` says why. A connection holds at most 16
  # subscriptions (`tooLarge` beyond).
}

interface ChangeListener {
  changed @0 (change :Change) -> ();
  ended @1 (failure :Failure) -> ();
  # No change will come any more: `unauthenticated` when the token expired (log in with a
  # new one), `overloaded` when the listener fell too far behind; either way subscribe
  # again from the last change received.
}

interface Subscription {
  # Holding it keeps the subscription alive.
}
