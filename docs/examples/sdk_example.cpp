// A small program using the AutoSync SDK: connect, upload a file, list, download it back,
// then print changes as they happen for ten seconds.
//
//   autosync-sdk-example HOST:PORT TOKEN LOCAL_FILE
//
// Build: it is part of the project's build (build/bin/autosync-sdk-example); in your own
// project link the `autosync::sdk` library.
#include <iostream>

#include "autosync/sdk/client.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: autosync-sdk-example HOST:PORT TOKEN LOCAL_FILE\n";
    return 2;
  }
  autosync::sdk::connect_options options;
  options.server = argv[1];
  options.token = argv[2];
  auto client = autosync::sdk::client::connect(options);
  if (!client) {
    std::cerr << "cannot connect: " << client.err().to_string() << "\n";
    return 1;
  }
  auto& c = **client;

  // Upload: only the chunks the server lacks travel; a rerun sends nothing.
  autosync::sdk::transfer_stats stats;
  autosync::sdk::put_options put;
  put.stats = &stats;
  auto stored = c.put_file(argv[3], "/examples/file", put);
  if (!stored) {
    std::cerr << "upload failed: " << stored.err().to_string() << "\n";
    return 1;
  }
  std::cout << "stored revision " << stored->revision << ", sent " << stats.bytes_sent << " of "
            << stats.file_bytes << " bytes\n";

  if (auto listing = c.list("/examples")) {
    for (const auto& e : *listing) std::cout << e.path << "  " << e.size << " bytes\n";
  }
  if (auto got = c.get_file("/examples/file", std::string(argv[3]) + ".copy"); !got) {
    std::cerr << "download failed: " << got.err().to_string() << "\n";
    return 1;
  }

  // Changes made by any device of this user, in order, as they happen.
  auto subscribed = c.subscribe(stored->revision, [](const autosync::sdk::change& change) {
    std::cout << change.seq << " " << autosync::sdk::to_string(change.what) << " " << change.path
              << " (from " << change.device_id << ")\n";
  });
  if (!subscribed) {
    std::cerr << "subscribe failed: " << subscribed.to_string() << "\n";
    return 1;
  }
  return c.wait_for_changes(std::chrono::seconds(10)) ? 0 : 1;
}
