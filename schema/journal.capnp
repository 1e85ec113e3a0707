@0xbdf6b84751f429df;
# The journal: what AutoSync persists, event by event, for every user.
#
# Events are the truth and everything else is derived from them. Each user owns a
# namespace (a tree of folders and files) and an append-only sequence of events that
# changed it. Sequence numbers are dense per user (1, 2, 3, ...), so a gap is always
# a fault, never a style. Every event carries the SHA-256 of the event before it and
# its own SHA-256, which makes a user's history a hash chain: any change to a stored
# event, or a missing or reordered one, breaks the chain at a precise sequence number.
#
# An event's own hash: the Event is encoded in Cap'n Proto's canonical form (a single
# bare segment, no framing, no padding, no far pointers); its hash is the SHA-256 of those
# bytes, and the journal stores exactly those bytes. The hash is therefore never stored
# beside the event (it would be redundant): verifying is hashing the stored bytes again,
# nothing is re-encoded, and the next event's `prevHash` pins it. `prevHash` of a user's
# first event is 32 zero bytes.
#
# Revisions: the revision of a version of a file is the sequence number of the event
# that produced it. It is unique within the user, strictly increasing, and needs no
# separate counter. A commit names the revision it was based on (`baseRevision`, 0 for
# a new file) so the domain can detect a stale write.
#
# Ids: every file and folder gets a stable `nodeId` when it is created; a move keeps it.
# Paths are how people name things, ids are how history follows them across renames.
#
# On disk these messages are sealed (AES-256-GCM under the user's key) before they are
# stored; docs/journal-format.md gives the byte layout of keys and sealed values.
#
# Compatibility: fields are only ever added, never renumbered or retyped. A reader that
# meets a `formatVersion` above the one it knows refuses the record with a clear error
# rather than guessing.

$import "/capnp/c++.capnp".namespace("autosync::schema");

const eventFormatVersion :UInt16 = 1;
const snapshotFormatVersion :UInt16 = 1;

struct ChunkRef {
  # One piece of a file's content, named by the SHA-256 of its bytes.
  hash @0 :Data;   # 32 bytes
  size @1 :UInt32; # bytes in the chunk
}

struct FileContent {
  # The content of one version of a file.
  size @0 :UInt64;          # whole file, bytes
  contentHash @1 :Data;     # SHA-256 of the whole content, 32 bytes
  chunks @2 :List(ChunkRef); # in file order; sizes add up to `size`
  mtimeUs @3 :Int64;        # modification time the device reported, microseconds since 1970
}

struct Event {
  formatVersion @0 :UInt16;
  # eventFormatVersion of the writer. Readers refuse versions they do not know.

  seq @1 :UInt64;
  # The user's sequence number, dense from 1.

  timestampUs @2 :Int64;
  # When the server accepted the command, microseconds since 1970 (UTC). Supplied by
  # the caller; the journal never reads a clock.

  deviceId @3 :Text;
  # The device (client installation) that issued the command; empty for server actions.

  operationId @4 :Text;
  # The client's operation id: retries of one command carry the same id, so a command
  # is applied once however often it is sent. Empty for server actions.

  prevHash @5 :Data;
  # The hash of the user's previous event (seq - 1); 32 zero bytes at seq 1.

  union {
    fileCommitted @6 :FileCommitted;
    fileDeleted @7 :FileDeleted;
    moved @8 :Moved;
    folderCreated @9 :FolderCreated;
    revisionRestored @10 :RevisionRestored;
    quotaChanged @11 :QuotaChanged;
    retentionApplied @12 :RetentionApplied;
  }

  commandDigest @13 :UInt64;
  # The first 8 bytes (little-endian) of the SHA-256 of the command that wrote this event
  # (its kind and arguments, actors/decide.cpp `command_digest`): a command sent again
  # with the same operation id but other arguments is told apart from a retry. 0 in
  # events written before it existed.

  struct FileCommitted {
    # A new version of a file: created when `baseRevision` is 0, replaced otherwise.
    # The new version's revision is this event's `seq`.
    nodeId @0 :UInt64;        # stable id of the file
    path @1 :Text;            # absolute, "/"-separated, UTF-8 ("/docs/report.pdf")
    baseRevision @2 :UInt64;  # the revision this version replaces; 0 for a new file
    content @3 :FileContent;
  }

  struct FileDeleted {
    # The file at `path` is deleted, or the folder at `path` with everything below it. What
    # was deleted stays recoverable (undelete, history) until the retention policy reclaims
    # it.
    nodeId @0 :UInt64;
    path @1 :Text;
    baseRevision @2 :UInt64;  # the revision that was deleted
    isFolder @3 :Bool;        # a folder (false in events written before it existed)
  }

  struct Moved {
    # A file, or a folder with everything below it, now lives at `toPath`. Ids are kept.
    nodeId @0 :UInt64;
    fromPath @1 :Text;
    toPath @2 :Text;
    isFolder @3 :Bool;
  }

  struct FolderCreated {
    nodeId @0 :UInt64;
    path @1 :Text;
  }

  struct RevisionRestored {
    # An older revision of a file becomes its newest version again (also how a deleted
    # file is undeleted). The content is repeated so that the event alone says what
    # the file now holds. The new revision is this event's `seq`.
    nodeId @0 :UInt64;
    path @1 :Text;
    restoredRevision @2 :UInt64;  # the revision whose content comes back
    baseRevision @3 :UInt64;      # the revision it replaces; 0 if the file was deleted
    content @4 :FileContent;
  }

  struct QuotaChanged {
    quotaBytes @0 :UInt64;  # the user's storage quota; 0 means unlimited
  }

  struct RetentionApplied {
    # The retention policy reclaimed what was deleted or replaced before `cutoffUs`: the
    # listed entries (tombstones) are gone with their history, and the listed files lose
    # the revisions older than the cutoff (their newest revision always stays). Listed
    # explicitly, so a replay removes exactly what the policy removed.
    cutoffUs @0 :Int64;
    removedNodes @1 :List(UInt64);
    trimmedFiles @2 :List(UInt64);
  }
}

struct Snapshot {
  # A user's derived state after applying every event up to and including `seq`.
  # Recovery loads the newest snapshot and replays the events after it.
  formatVersion @0 :UInt16;  # snapshotFormatVersion of the writer
  seq @1 :UInt64;            # the last event included in `state`
  headHash @2 :Data;         # `hash` of that event: ties the snapshot to the hash chain
  timestampUs @3 :Int64;     # the newest event timestamp the state holds (caller's clock)
  stateFormat @4 :UInt16;    # version of the domain's encoding of `state`
  state @5 :Data;            # the domain's encoding of the namespace; opaque to the journal
}

struct ChunkLocation {
  # Where a user's chunk is stored: chunk contents live in append-only pack files beside
  # the database (docs/journal-format.md), and this small record is the index entry. It is
  # written only after the pack bytes it names are on disk.
  pack @0 :UInt32;          # pack file number: chunks/<8 hex digits>.pack
  offset @1 :UInt64;        # offset of the record header in that file
  sealedLength @2 :UInt32;  # bytes of the sealed chunk after the 16-byte record header
  size @3 :UInt32;          # plaintext bytes of the chunk
  storedAtUs @4 :Int64;     # when it was stored, microseconds since 1970 (0: by a build
                            # before this field; such chunks count as stored long ago)
}

struct NamespaceState {
  # A user's namespace as the domain derives it from events (actors/namespace_state.hpp),
  # stored in Snapshot.state with Snapshot.stateFormat = namespaceStateFormat. Everything
  # the state holds that is not derivable from what is listed here (the name index, bytes
  # used, live file count) is rebuilt on load.
  nextNodeId @0 :UInt64;
  quotaBytes @1 :UInt64;
  nodes @2 :List(Node);            # every entry but the root, live and deleted
  operations @3 :List(Operation);  # remembered operation ids, oldest first
  lastTimestampUs @4 :Int64;       # the newest event timestamp so far (0: none recorded)

  struct Node {
    id @0 :UInt64;
    parent @1 :UInt64;
    name @2 :Text;
    folder @3 :Bool;
    deleted @4 :Bool;
    revision @5 :UInt64;
    history @6 :List(Version);  # files: every revision, oldest first
    movedSeq @7 :UInt64;        # the seq of the entry's last move (0: never moved)
  }

  struct Version {
    revision @0 :UInt64;
    deletion @1 :Bool;
    path @2 :Text;
    content @3 :FileContent;
    deviceId @4 :Text;
    timestampUs @5 :Int64;
  }

  struct Operation {
    id @0 :Text;
    firstSeq @1 :UInt64;
    lastSeq @2 :UInt64;
    commandDigest @3 :UInt64;  # Event.commandDigest of its events (0: not recorded)
  }
}

const namespaceStateFormat :UInt16 = 2;
# 2: Node.movedSeq and lastTimestampUs. A snapshot of format 1 lacks what they derive from
# the events before it, so it is not loaded: recovery replays from the start (and writes a
# snapshot of format 2 in time), and `autosync-replay verify` passes over it.
