// #region imports
import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { AggregateNotFoundError, ConcurrencyError, ValidationError } from 'typeorm-event-sourcing';
// #endregion imports

// #region filter
/** What the filter needs of the HTTP platform's response (Express's, here). */
interface JsonResponse {
  status(code: number): { json(body: unknown): void };
}

/** The library's errors as HTTP answers: invalid input 400 with its issues, conflicts 409, unknown aggregates 404. */
@Catch(ValidationError, ConcurrencyError, AggregateNotFoundError)
export class EventSourcingErrorsFilter implements ExceptionFilter {
  catch(error: ValidationError | ConcurrencyError | AggregateNotFoundError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<JsonResponse>();
    if (error instanceof ValidationError) {
      response.status(HttpStatus.BAD_REQUEST).json({ error: error.code, message: error.message, issues: error.issues });
    } else if (error instanceof ConcurrencyError) {
      response.status(HttpStatus.CONFLICT).json({ error: error.code, message: error.message });
    } else {
      response.status(HttpStatus.NOT_FOUND).json({ error: error.code, message: error.message });
    }
  }
}
// #endregion filter
