#define BOOST_TEST_MODULE sdk_chunker
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include "autosync/base/sha256.hpp"
#include "autosync/sdk/chunker.hpp"
#include "test_data.hpp"

using namespace autosync;
using namespace autosync::sdk;
using autosync::test::random_bytes;

namespace {

// chunk hash -> size, for comparing what two versions of a file share.
std::map<sha256_digest, std::size_t> chunks_of(const std::string& data, chunk_sizes sizes) {
  std::map<sha256_digest, std::size_t> out;
  std::size_t at = 0;
  for (auto len : chunk_lengths(data, sizes)) {
    out[sha256(std::string_view(data).substr(at, len))] = len;
    at += len;
  }
  return out;
}

// Bytes a re-upload of `after` sends when the server has every chunk of `before`.
std::size_t bytes_to_send(const std::string& before, const std::string& after, chunk_sizes sizes) {
  const auto had = chunks_of(before, sizes);
  std::size_t send = 0;
  for (const auto& [hash, size] : chunks_of(after, sizes)) {
    if (had.count(hash) == 0) send += size;
  }
  return send;
}

// Bytes from splitmix64: the same on every platform and standard library, so cut points
// computed from them can be pinned.
std::string splitmix_bytes(std::size_t n, std::uint64_t state) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    state += 0x9e3779b97f4a7c15;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    z ^= z >> 31;
    std::memcpy(out.data() + i, &z, std::min<std::size_t>(8, n - i));
  }
  return out;
}

std::string lengths_text(const std::vector<std::uint32_t>& lengths) {
  std::string out;
  for (auto l : lengths) out += std::to_string(l) + " ";
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(chunks_cover_the_data_within_the_size_bounds) {
  const auto data = random_bytes(8 << 20, 1);
  const auto sizes = chunk_sizes::for_file(data.size());
  const auto lengths = chunk_lengths(data, sizes);
  BOOST_TEST(std::accumulate(lengths.begin(), lengths.end(), std::size_t{0}) == data.size());
  for (std::size_t i = 0; i + 1 < lengths.size(); ++i) {
    BOOST_TEST(lengths[i] >= sizes.min);
    BOOST_TEST(lengths[i] <= sizes.max);
  }
  // Normalized chunking keeps the mean near the target.
  const double mean = static_cast<double>(data.size()) / static_cast<double>(lengths.size());
  BOOST_TEST(mean > sizes.avg * 0.6, mean);
  BOOST_TEST(mean < sizes.avg * 1.6, mean);
}

BOOST_AUTO_TEST_CASE(cut_points_do_not_depend_on_how_the_stream_is_fed) {
  const auto data = random_bytes(3 << 20, 2);
  const auto sizes = chunk_sizes::for_file(data.size());
  const auto whole = chunk_lengths(data, sizes);
  std::mt19937 rng(3);
  chunker c(sizes);
  std::vector<std::uint32_t> streamed;
  for (std::size_t at = 0; at < data.size();) {
    const std::size_t piece = std::min<std::size_t>(1 + rng() % 100000, data.size() - at);
    c.feed(std::string_view(data).substr(at, piece), streamed);
    at += piece;
  }
  c.finish(streamed);
  BOOST_TEST(streamed == whole);
}

BOOST_AUTO_TEST_CASE(an_insertion_moves_only_the_chunks_it_touches) {
  const auto before = random_bytes(16 << 20, 4);
  auto after = before;
  after.insert(after.size() / 2, "a few inserted bytes");
  const auto sizes = chunk_sizes::for_file(before.size());
  BOOST_TEST(bytes_to_send(before, after, sizes) <= 3u * sizes.max);
  BOOST_TEST(bytes_to_send(before, before, sizes) == 0u);  // unchanged: nothing to send
}

BOOST_AUTO_TEST_CASE(a_one_mib_change_in_a_large_file_resends_at_most_one_and_a_half_mib) {
  const auto before = random_bytes(96 << 20, 5);
  auto after = before;
  const auto edit = random_bytes(1 << 20, 6);
  after.replace(after.size() / 2, edit.size(), edit);
  // The sizes of a 256 MiB file: the same chunk sizes as the delta benchmark's file.
  const auto sizes = chunk_sizes::for_file(256ull << 20);
  const auto sent = bytes_to_send(before, after, sizes);
  BOOST_TEST_MESSAGE("1 MiB edit re-sends " << sent << " bytes");
  BOOST_TEST(sent <= (3u << 20) / 2);
}

BOOST_AUTO_TEST_CASE(sizes_grow_with_the_file_within_the_stores_limits) {
  const auto tiny = chunk_sizes::for_file(1000);
  const auto big = chunk_sizes::for_file(256ull << 20);
  const auto huge = chunk_sizes::for_file(64ull << 30);
  BOOST_TEST(tiny.avg == 16u << 10);
  BOOST_TEST(big.avg == 64u << 10);
  BOOST_TEST(huge.avg == 1u << 20);
  BOOST_TEST(huge.max <= 16u << 20);  // the journal's chunk size limit
  BOOST_TEST((64ull << 30) / huge.avg <= 100000u);  // references per commit stay bounded
}

// Cut points are part of the format: a client cutting differently re-uploads everything
// it ever stored, and two versions of the SDK stop sharing chunks. Pinned here, so a
// faster chunker must cut exactly where this one does.
BOOST_AUTO_TEST_CASE(cut_points_are_pinned) {
  struct golden {
    std::string data;
    std::size_t chunks;
    const char* lengths_hash;  // SHA-256 of the lengths as decimal text, space separated
  };
  const std::vector<golden> cases = {
      {splitmix_bytes(4u << 20, 1), 61,
       "b04755bd554bf2106292f1a60202f8b777f828855dbd5f38c2ff919a49e9223d"},
      {splitmix_bytes(512u << 10, 3), 26,
       "698d18998fa4aece4cecb68b8ebeed687fca364e302e113502ada254649c778f"},
      // Never cut by content: every chunk ends at the maximum size.
      {std::string(1u << 20, '\0'), 4,
       "56d89bcbfb79bd0efafc8a4db689fb393f114503932bf5d0a864e7a8e42d61c4"},
  };
  for (const auto& c : cases) {
    const auto sizes = chunk_sizes::for_file(c.data.size());
    const auto lengths = chunk_lengths(c.data, sizes);
    BOOST_TEST(lengths.size() == c.chunks);
    BOOST_TEST(sha256(lengths_text(lengths)).hex() == c.lengths_hash);
    // Fed in awkward pieces, the cuts are the same.
    chunker fed(sizes);
    std::vector<std::uint32_t> pieces;
    for (std::size_t at = 0, step = 1; at < c.data.size(); at += step, step = step * 7 % 65521 + 1) {
      fed.feed(std::string_view(c.data).substr(at, step), pieces);
    }
    fed.finish(pieces);
    BOOST_TEST(lengths_text(pieces) == lengths_text(lengths));
  }
}
