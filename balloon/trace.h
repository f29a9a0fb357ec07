#include "trace/trace-balloon.h"
