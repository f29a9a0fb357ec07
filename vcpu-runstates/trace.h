#include "trace/trace-vcpu_runstates.h"
