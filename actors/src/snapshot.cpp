// Encoding a namespace for snapshots: what cannot be derived is stored, the rest rebuilt.
#include <capnp/serialize.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "autosync/actors/namespace_state.hpp"
#include "autosync/actors/path.hpp"
#include "autosync/schema/framing.hpp"

namespace autosync::actors {

namespace {

// The memory of the first segment of every snapshot a thread encodes: kept between
// snapshots, so its pages stay resident and no encoding starts in fresh memory (zeroing and
// faulting in new pages was most of an encoding's time: 2,000 files took 1.0 us each, now
// 0.2). capnp zeroes what a message used when it is destroyed, which readies the space for
// the next one. It grows to the largest state the thread encoded, up to a cap.
class encode_scratch {
public:
  static constexpr std::size_t words_max = (64u << 20) / sizeof(capnp::word);

  // A first segment of exactly `words` words (at most the cap): its size, and so where a
  // large state continues in a second segment, depends on the state alone, never on what
  // the thread encoded before, so equal states still encode to equal bytes.
  kj::ArrayPtr<capnp::word> take(std::size_t words) {
    words = std::min(words, words_max);
    // With headroom, so a growing user's next snapshots fit in the same memory; and given
    // back when far larger than needed, so one huge user does not pin it for good.
    const bool oversized = words_.size() > 4 * words && words_.size() > (16u << 20) / sizeof(capnp::word);
    if (words_.size() < words || oversized) {
      words_ = std::vector<capnp::word>(words + words / 2, capnp::word());
    }
    return kj::arrayPtr(words_.data(), words);
  }

private:
  std::vector<capnp::word> words_;  // zeroed
};

}  // namespace

std::string namespace_state::encode() const {
  // A file with one revision and a short name is about 37 words; what does not fit goes
  // on in a segment of its own.
  thread_local encode_scratch scratch;
  capnp::MallocMessageBuilder message(
      scratch.take(nodes_.size() * 48 + operations_.size() * 8 + 1024));
  auto root = message.initRoot<schema::NamespaceState>();
  root.setNextNodeId(next_node_id_);
  root.setQuotaBytes(quota_bytes_);
  root.setLastTimestampUs(last_timestamp_us_);
  // Deterministic order, so equal states encode to equal bytes.
  std::vector<const node*> ordered;
  for (const auto& [id, n] : nodes_) {
    if (id != root_id) ordered.push_back(&n);
  }
  std::sort(ordered.begin(), ordered.end(), [](const node* a, const node* b) { return a->id < b->id; });
  auto nodes = root.initNodes(static_cast<unsigned>(ordered.size()));
  for (unsigned i = 0; i < ordered.size(); ++i) {
    const node& n = *ordered[i];
    auto out = nodes[i];
    out.setId(n.id);
    out.setParent(n.parent);
    out.setName(n.name);
    out.setFolder(n.folder);
    out.setDeleted(n.deleted);
    out.setRevision(n.revision);
    out.setMovedSeq(n.moved_seq);
    auto history = out.initHistory(static_cast<unsigned>(n.history.size()));
    for (unsigned k = 0; k < n.history.size(); ++k) {
      const version& v = n.history[k];
      history[k].setRevision(v.revision);
      history[k].setDeletion(v.deletion);
      history[k].setPath(v.path);
      content_to(v.content, history[k].initContent());
      history[k].setDeviceId(v.device_id);
      history[k].setTimestampUs(v.timestamp_us);
    }
  }
  auto operations = root.initOperations(static_cast<unsigned>(operations_.size()));
  unsigned i = 0;
  operations_.for_each([&](std::string_view id, const applied_operation& applied) {
    operations[i].setId({id.data(), id.size()});
    operations[i].setFirstSeq(applied.first_seq);
    operations[i].setLastSeq(applied.last_seq);
    operations[i].setCommandDigest(applied.command_digest);
    ++i;
  });
  // The stream framing, then the segments: one copy, straight into the result.
  auto segments = message.getSegmentsForOutput();
  std::string out = schema::segment_table(segments);
  std::size_t bytes = out.size();
  for (auto segment : segments) bytes += segment.asBytes().size();
  out.reserve(bytes);
  for (auto segment : segments) {
    out.append(reinterpret_cast<const char*>(segment.asBytes().begin()), segment.asBytes().size());
  }
  return out;
}

result<namespace_state> namespace_state::decode(std::string_view bytes, std::uint64_t seq,
                                                const sha256_digest& hash) {
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return error(error_kind::corruption, "namespace snapshot is not whole words");
  }
  // Read in place when the bytes are word-aligned (a string's buffer from malloc is): a
  // large namespace is tens of MiB, and a copy of it cost a tenth of loading one.
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(bytes.data()),
                                        bytes.size() / sizeof(capnp::word));
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(capnp::word) != 0) {
    copy = kj::heapArray<capnp::word>(words.size());
    std::memcpy(copy.begin(), bytes.data(), bytes.size());
    words = copy;
  }
  capnp::ReaderOptions options;
  // The limit guards against messages crafted to make a reader loop; a snapshot was
  // authenticated (AES-GCM) before it got here, and a large namespace is a large message.
  options.traversalLimitInWords = std::numeric_limits<std::uint64_t>::max();
  capnp::FlatArrayMessageReader reader(words, options);
  auto root = reader.getRoot<schema::NamespaceState>();
  namespace_state state;
  state.last_seq_ = seq;
  state.last_hash_ = hash;
  state.quota_bytes_ = root.getQuotaBytes();
  state.last_timestamp_us_ = root.getLastTimestampUs();
  state.next_node_id_ = root.getNextNodeId();
  state.nodes_.reserve(root.getNodes().size() + 1);  // one table, not twenty rehashes
  for (auto in : root.getNodes()) {
    node n;
    n.id = in.getId();
    n.parent = in.getParent();
    const auto name = in.getName();
    n.name = std::string(name.cStr(), name.size());
    n.folder = in.getFolder();
    n.deleted = in.getDeleted();
    n.revision = in.getRevision();
    n.moved_seq = in.getMovedSeq();
    n.history.reserve(in.getHistory().size());
    for (auto v : in.getHistory()) {
      version out;
      out.revision = v.getRevision();
      out.deletion = v.getDeletion();
      const auto path = v.getPath();
      const auto device = v.getDeviceId();
      out.path = std::string(path.cStr(), path.size());
      out.content = content_from(v.getContent());
      out.device_id = std::string(device.cStr(), device.size());
      out.timestamp_us = v.getTimestampUs();
      if (!out.deletion) n.content = out.content;  // the current content is the last one
      n.history.push_back(std::move(out));
    }
    if (n.id == root_id || state.nodes_.count(n.id) != 0) {
      return error(error_kind::corruption, "namespace snapshot repeats node " + std::to_string(n.id));
    }
    if (!n.deleted) {
      if (!n.folder) {
        state.used_bytes_ += n.content.size;
        ++state.live_files_;
      }
    }
    state.nodes_.emplace(n.id, std::move(n));
  }
  for (auto op : root.getOperations()) {
    const auto id = op.getId();
    state.operations_.restore({id.cStr(), id.size()},
                              {op.getFirstSeq(), op.getLastSeq(), op.getCommandDigest()});
  }
  // Folders' children are derived: link every live node once all nodes are known.
  for (const auto& [id, n] : state.nodes_) {
    if (id == root_id || n.deleted) continue;
    auto parent = state.nodes_.find(n.parent);
    if (parent == state.nodes_.end() || !parent->second.folder) {
      return error(error_kind::corruption,
                   "namespace snapshot: node " + std::to_string(id) + " has no folder parent");
    }
    parent->second.children[fold_case(n.name)] = id;
  }
  return state;
}

}  // namespace autosync::actors
