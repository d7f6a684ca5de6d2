package emulator

import (
	"slices"
	"strings"
	"time"
)

// Pagination defaults of the QingCloud API: limit 20, at most 100 items per page.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// pageParams parses offset and limit: limit <= 0 means 20, a larger limit is clamped to 100,
// a negative offset is 1100.
func (r *request) pageParams() (offset, limit int, err *apiError) {
	if offset, err = r.integer("offset", 0); err != nil {
		return 0, 0, err
	}
	if offset < 0 {
		return 0, 0, errInvalid("parameter [offset] should not be negative, got [%d]", offset)
	}
	if limit, err = r.integer("limit", defaultLimit); err != nil {
		return 0, 0, err
	}
	if limit <= 0 {
		limit = defaultLimit
	}
	if limit > maxLimit {
		limit = maxLimit
	}
	return offset, limit, nil
}

// sortByCreated orders items by create time, newest first, then by id.
func sortByCreated[T any](items []T, created func(T) time.Time, id func(T) string) {
	slices.SortStableFunc(items, func(x, y T) int {
		if cx, cy := created(x), created(y); !cx.Equal(cy) {
			if cx.After(cy) {
				return -1
			}
			return 1
		}
		return strings.Compare(id(x), id(y))
	})
}

// paginate returns the page of items selected by offset/limit and the total count. items must
// already be filtered and ordered.
func paginate[T any](r *request, items []T) ([]T, int, *apiError) {
	offset, limit, err := r.pageParams()
	if err != nil {
		return nil, 0, err
	}
	total := len(items)
	if offset >= total {
		return []T{}, total, nil
	}
	end := min(offset+limit, total)
	return items[offset:end], total, nil
}

// describeResult renders a Describe answer: setName holds the page, total_count the total (when
// the action's answer has that field: DescribeLoadBalancers and DescribeLoadBalancerBackends do not).
func describeResult[T any, O any](r *request, setName string, items []T, render func(T) O) (result, *apiError) {
	page, total, err := paginate(r, items)
	if err != nil {
		return nil, err
	}
	out := make([]O, 0, len(page))
	for _, it := range page {
		out = append(out, render(it))
	}
	res := result{setName: out}
	if sa := specActions()[r.action]; sa == nil || sa.out.Fields().ByName("total_count") != nil {
		res["total_count"] = total
	}
	return res, nil
}
