#define BOOST_TEST_MODULE base
#include <boost/test/unit_test.hpp>

#include "autosync/base/blocking_pool.hpp"
#include "autosync/base/error.hpp"
#include "autosync/base/name_fold.hpp"
#include "autosync/base/secret_file.hpp"
#include "autosync/base/sha256.hpp"
#include "autosync/base/thread_name.hpp"
#include "autosync/base/utc_time.hpp"
#include "printers.hpp"
#include "temp_dir.hpp"

#include <pthread.h>
#include <sys/stat.h>

#include <fstream>
#include <future>
#include <thread>

using namespace autosync;

BOOST_AUTO_TEST_CASE(names_fold_across_letter_case_and_unicode_normalization) {
  BOOST_TEST(fold_name("Report.PDF") == "report.pdf");
  BOOST_TEST(fold_name("\xc3\x89t\xc3\xa9.txt") == fold_name("\xc3\xa9t\xc3\xa9.TXT"));  // Été, été
  BOOST_TEST(fold_name("e\xcc\x81") == fold_name("\xc3\xa9"));  // e + combining acute, é
  BOOST_TEST(fold_name("Stra\xc3\x9f" "e") == fold_name("STRASSE"));  // ß folds to ss
  BOOST_TEST(fold_name("\xce\xa3\xce\x9f\xce\xa6") == fold_name("\xcf\x83\xce\xbf\xcf\x86"));  // Greek
  BOOST_TEST(fold_name("\xd0\x94\xd0\xbe\xd0\xba") == fold_name("\xd0\xb4\xd0\xbe\xd0\xba"));  // Cyrillic
  BOOST_TEST(fold_name("a") != fold_name("\xc3\xa1"));  // an accent is not case
  // Alpha with ypogegrammeni (U+0345) and acute, the marks in either order: one name.
  BOOST_TEST(fold_name("\xce\xb1\xcd\x85\xcc\x81") == fold_name("\xce\xb1\xcc\x81\xcd\x85"));
  BOOST_TEST(fold_name("A\xff") == "a\xff");  // not UTF-8: ASCII letters only
}

BOOST_AUTO_TEST_CASE(sha256_matches_the_published_test_vectors) {
  BOOST_TEST(sha256("").hex() ==
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(sha256("abc").hex() ==
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

BOOST_AUTO_TEST_CASE(incremental_hash_equals_one_shot_hash) {
  std::string data(100000, 'x');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  sha256_hasher hasher;
  hasher.update(std::string_view(data).substr(0, 333));
  hasher.update(std::string_view(data).substr(333));
  BOOST_TEST(hasher.finish() == sha256(data));
}

BOOST_AUTO_TEST_CASE(digest_parses_only_well_formed_hex) {
  auto d = sha256("abc");
  auto parsed = sha256_digest::from_hex(d.hex());
  BOOST_REQUIRE(parsed.has_value());
  BOOST_TEST(*parsed == d);
  BOOST_TEST(!sha256_digest::from_hex("abc").has_value());
  BOOST_TEST(!sha256_digest::from_hex(std::string(64, 'g')).has_value());
  BOOST_TEST(!sha256_digest::from_bytes("short").has_value());
}

BOOST_AUTO_TEST_CASE(errors_print_their_kind_and_message) {
  error e(error_kind::corruption, "user alice seq 3: bad");
  BOOST_TEST(e.to_string() == "corruption: user alice seq 3: bad");
  result<int> r = error(error_kind::conflict, "stale");
  BOOST_TEST(!r.has_value());
  BOOST_TEST(r.err().kind() == error_kind::conflict);
  result<int> ok = 7;
  BOOST_TEST(*ok == 7);
  status s;
  BOOST_TEST(s.is_ok());
}

BOOST_AUTO_TEST_CASE(utc_times_format_and_parse_back) {
  BOOST_TEST(format_utc(1800000000123456) == "2027-01-15T08:00:00.123456Z");
  BOOST_TEST(format_utc(0) == "1970-01-01T00:00:00.000000Z");
  BOOST_TEST(format_utc(-1) == "1969-12-31T23:59:59.999999Z");
  BOOST_TEST(*parse_utc("2027-01-15T08:00:00.123456Z") == 1800000000123456);
  BOOST_TEST(*parse_utc("2027-01-15T08:00:00Z") == 1800000000000000);
  BOOST_TEST(*parse_utc("2027-01-15T08:00:00.5Z") == 1800000000500000);
  BOOST_TEST(*parse_utc(format_utc(1234567890)) == 1234567890);
  for (const char* bad : {"yesterday", "2027-01-15T08:00:00", "2027-01-15T08:00:00+01:00",
                          "2027-01-15T08:00:00.Z", "2027-01-15T08:00:00Zx"}) {
    BOOST_TEST(!parse_utc(bad).has_value(), bad);
  }
}

BOOST_AUTO_TEST_CASE(a_new_secret_file_is_random_private_and_never_overwritten) {
  test::temp_dir dir;
  auto first = create_secret_file(dir / "secret");
  BOOST_REQUIRE_MESSAGE(first.has_value(), test::describe(first));
  BOOST_TEST(first->size() == 64u);
  BOOST_TEST(sha256_digest::from_hex(*first).has_value());
  std::string stored;
  std::getline(std::ifstream(dir / "secret"), stored);
  BOOST_TEST(stored == *first);
  struct stat st {};
  BOOST_REQUIRE(::stat((dir / "secret").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  auto again = create_secret_file(dir / "secret");
  BOOST_REQUIRE(!again.has_value());
  BOOST_TEST(again.err().kind() == error_kind::conflict);
  std::getline(std::ifstream(dir / "secret"), stored);
  BOOST_TEST(stored == *first);  // unchanged
  BOOST_TEST(*create_secret_file(dir / "other") != *first);
}

BOOST_AUTO_TEST_CASE(durations_parse_with_their_unit_and_nothing_else) {
  BOOST_TEST(parse_duration("250ms")->count() == 250);
  BOOST_TEST(parse_duration("90s")->count() == 90 * 1000);
  BOOST_TEST(parse_duration("15m")->count() == 900 * 1000);
  BOOST_TEST(parse_duration("2h")->count() == 7200 * 1000);
  BOOST_TEST(parse_duration("30d")->count() == 30LL * 86400 * 1000);
  BOOST_TEST(parse_duration("1000000000d")->count() == 1000000000LL * 86400 * 1000);
  for (const char* bad : {"", "s", "ms", "15", "0d", "0ms", "-1d", "1.5h", "1w", " 1d", "1d ",
                          "5 ms", "5mss", "99999999999d"}) {
    BOOST_TEST(!parse_duration(bad).has_value(), bad);
  }
}

namespace {

std::string this_thread_name() {
  char name[64] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

}  // namespace

BOOST_AUTO_TEST_CASE(threads_carry_their_names_cut_to_what_linux_keeps) {
  std::string seen;
  std::thread([&] {
    name_this_thread("journal-writer");
    seen = this_thread_name();
  }).join();
  BOOST_TEST(seen == "journal-writer");
  std::thread([&] {
    name_this_thread("a-name-longer-than-fifteen-bytes");
    seen = this_thread_name();
  }).join();
  BOOST_TEST(seen == "a-name-longer-t");
}

BOOST_AUTO_TEST_CASE(a_blocking_pool_names_its_threads) {
  std::promise<std::string> name;
  auto seen = name.get_future();
  {
    blocking_pool pool(2, "recovery");
    pool.run([&] { name.set_value(this_thread_name()); });
  }
  BOOST_TEST(seen.get() == "recovery");
}
