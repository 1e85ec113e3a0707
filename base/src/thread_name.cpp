#include "autosync/base/thread_name.hpp"

#include <pthread.h>

#include <string>

namespace autosync {

void name_this_thread(std::string_view name) {
  constexpr std::size_t kernel_limit = 15;  // TASK_COMM_LEN less the terminating NUL
  const std::string cut(name.substr(0, kernel_limit));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace autosync
