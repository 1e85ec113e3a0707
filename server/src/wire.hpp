// Between the domain's types and the client RPC's messages (schema/sync.capnp). The one
// place errors become RPC failures.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "autosync/actors/changes.hpp"
#include "autosync/actors/decide.hpp"
#include "autosync/schema/sync.capnp.h"

namespace autosync::server {

// A file or folder copied out of a user's state, so it can leave the actor's thread.
struct entry_copy {
  actors::node_id id = 0;
  std::string path;
  bool folder = false;
  std::uint64_t revision = 0;
  actors::file_content content;
  std::string device_id;
};

entry_copy copy_entry(const actors::namespace_state& state, const actors::node& n);
// The file as revision `revision` left it (the file now at `path` first, then any other),
// or nothing once retention dropped that revision.
std::optional<entry_copy> entry_at_revision(const actors::namespace_state& state,
                                            std::string_view path, std::uint64_t revision);

void to_wire(const entry_copy& e, schema::rpc::Entry::Builder out, bool with_chunks);
void to_wire(const actors::version& v, schema::rpc::Version::Builder out);
void to_wire(const actors::change& c, schema::rpc::Change::Builder out);
void to_wire(const error& e, schema::rpc::Failure::Builder out);
void to_wire(const actors::refusal& r, schema::rpc::Failure::Builder out);

// A 32-byte hash from the wire, or `invalid`.
result<sha256_digest> digest_from(capnp::Data::Reader data);
capnp::Data::Reader bytes_of(const sha256_digest& d);
std::string text_of(capnp::Text::Reader t);

}  // namespace autosync::server
